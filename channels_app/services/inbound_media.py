"""MMS media: one row per file an inbound message refers to, fetched by a task and stored as an attachment.

A row ends ``stored`` (with its attachment), ``refused`` (a URL, type or size we will not take: no retry) or
``failed`` (the provider said no, or it kept failing): the reason stays on the row and shows on the message.
"""

import logging
import mimetypes
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from channels_app.models import InboundMedia
from channels_app.sms.media_fetch import (
    MediaFetchFailed,
    MediaFetchTransient,
    MediaRefused,
    twilio_media_download,
    twilio_media_url_check,
)
from tickets.services.attachments import attachment_store

logger = logging.getLogger(__name__)


# The fetch task retries with exponential backoff up to this long between attempts; beat's sweep of lost fetches
# waits longer than that before it calls a fetch that already failed once lost.
MEDIA_RETRY_BACKOFF_MAX_SECONDS = 600


class MediaFetchShouldRetry(Exception):
    """A fetch failed for a reason that may pass; the task retries with backoff."""


def inbound_media_fetch(*, media_id: int) -> InboundMedia | None:
    """Fetch one pending media file and store it as an attachment of its message. Safe to run twice and from two
    workers at once: each attempt is claimed by a conditional update of ``attempts``, so a duplicate task that
    lost the claim does nothing, and the row is stored under ``select_for_update`` only while still pending.

    No lock is held during the download. Raises ``MediaFetchShouldRetry`` for a failure that may pass, until
    ``MEDIA_FETCH_MAX_ATTEMPTS``; then the row is ``failed`` with the reason.
    """
    media = InboundMedia.objects.select_related("message__channel").filter(pk=media_id).first()
    if media is None or media.status != InboundMedia.Status.PENDING:
        return media
    channel = media.message.channel
    secrets = (channel.secrets or {}) if channel is not None else {}
    account_sid, auth_token = secrets.get("account_sid", ""), secrets.get("auth_token", "")
    try:
        # Checked before the claim too: a URL we will never fetch costs no attempt and no request.
        twilio_media_url_check(url=media.url, account_sid=account_sid)
    except MediaRefused as exc:
        _finish(media, InboundMedia.Status.REFUSED, str(exc))
        return media
    claimed = InboundMedia.objects.filter(
        pk=media.pk, status=InboundMedia.Status.PENDING, attempts=media.attempts
    ).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    if not claimed:
        return media  # another worker took this attempt
    media.attempts += 1
    limits = settings.HELPDESK
    try:
        fetched = twilio_media_download(
            url=media.url,
            account_sid=account_sid,
            auth_token=auth_token,
            max_bytes=min(limits["MAX_MEDIA_BYTES"], limits["MAX_ATTACHMENT_BYTES"]),
            allowed_types=limits["MEDIA_ALLOWED_TYPES"],
            timeout_seconds=limits["OUTBOUND_HTTP_TIMEOUT_SECONDS"],
        )
    except MediaRefused as exc:
        _finish(media, InboundMedia.Status.REFUSED, str(exc))
        return media
    except MediaFetchFailed as exc:
        _finish(media, InboundMedia.Status.FAILED, str(exc))
        return media
    except MediaFetchTransient as exc:
        if media.attempts >= limits["MEDIA_FETCH_MAX_ATTEMPTS"]:
            _finish(media, InboundMedia.Status.FAILED, f"{exc} (gave up after {media.attempts} attempts)")
            return media
        InboundMedia.objects.filter(pk=media.pk, status=InboundMedia.Status.PENDING).update(
            error=str(exc)[:2000], updated_at=timezone.now()
        )
        logger.info("channels_app.media_fetch_retry", extra={"media_id": media.pk, "attempt": media.attempts})
        raise MediaFetchShouldRetry(str(exc)) from exc
    _store(media, fetched.content, fetched.content_type)
    return media


@transaction.atomic
def _store(media: InboundMedia, content: bytes, content_type: str) -> None:
    locked = InboundMedia.objects.select_for_update().get(pk=media.pk)
    if locked.status != InboundMedia.Status.PENDING:
        return
    attachment = attachment_store(
        message=media.message, filename=_filename(media, content_type), content_type=content_type, content=content
    )
    InboundMedia.objects.filter(pk=media.pk).update(
        status=InboundMedia.Status.STORED, attachment=attachment, error="", updated_at=timezone.now()
    )
    media.status, media.attachment, media.error = InboundMedia.Status.STORED, attachment, ""
    logger.info("channels_app.media_stored", extra={"media_id": media.pk, "attachment_id": attachment.pk})


def _finish(media: InboundMedia, status: str, reason: str) -> None:
    InboundMedia.objects.filter(pk=media.pk, status=InboundMedia.Status.PENDING).update(
        status=status, error=reason[:2000], updated_at=timezone.now()
    )
    media.status, media.error = status, reason[:2000]
    logger.warning(f"channels_app.media_{status}", extra={"media_id": media.pk, "attempt": media.attempts})


def _filename(media: InboundMedia, content_type: str) -> str:
    """Twilio's media sid (the URL's last segment, ME...) with the extension of its type: ``ME12ab.jpg``."""
    stem = urlsplit(media.url).path.rstrip("/").rsplit("/", 1)[-1] or f"media-{media.index}"
    return stem + (mimetypes.guess_extension(content_type) or "")
