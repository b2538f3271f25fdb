"""One-time values of signed provider posts (Mailgun's ``token``): a replayed post is refused, the provider's own
retry of a post we could not take is let in.

Mailgun signs only ``timestamp + token``, not the message, so a captured signature could carry any message. A post
is taken when its token is new and its timestamp is within ``EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS`` of our
clock, and its token is used up in the transaction that stores it. Mailgun retries a post with its original
timestamp and token (hours later); so a post we refused with a retryable error leaves its token and content
behind (not accepted), and a later post with that token and that same content is taken past the tolerance.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from channels_app.models import WebhookNonce

logger = logging.getLogger(__name__)


class ReplayRefused(Exception):
    """The post reuses a token with other content, or its timestamp is outside the tolerance."""


@dataclass(frozen=True)
class NonceClaim:
    provider: str
    nonce: str
    content_digest: str
    signed_at: datetime


def content_digest(parts) -> str:
    """SHA-256 over ``(name, bytes)`` pairs, each length-prefixed so no two different posts share a digest."""
    digest = hashlib.sha256()
    for name, value in parts:
        for chunk in (name.encode("utf-8", "surrogatepass"), value):
            digest.update(len(chunk).to_bytes(8, "big"))
            digest.update(chunk)
    return digest.hexdigest()


def webhook_nonce_check(*, claim: NonceClaim) -> bool:
    """Decide on a post whose signature is valid, before anything is stored. Returns True when the same post was
    accepted already (the provider retrying after losing our answer: answer 2xx, store nothing), False when it may
    be stored. Raises ``ReplayRefused``."""
    seen = WebhookNonce.objects.filter(provider=claim.provider, nonce=claim.nonce).first()
    if seen is not None:
        if not constant_time_compare(seen.content_digest, claim.content_digest):
            raise ReplayRefused("This signature's token was already used for other content.")
        # Not accepted yet: the provider's retry of a post we refused with a retryable error.
        return seen.accepted_at is not None
    tolerance = settings.EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS
    skew = abs((timezone.now() - claim.signed_at).total_seconds())
    if skew > tolerance:
        raise ReplayRefused(
            f"The signature's timestamp is {int(skew)} seconds from our clock; the tolerance is {tolerance} seconds."
        )
    return False


def webhook_nonce_accept(*, claim: NonceClaim) -> bool:
    """Use the token up. Must run inside the transaction that stores the post, before it stores anything, so a
    rolled-back store leaves the token unused. Returns False when a concurrent post with the same content took it
    first (store nothing); raises ``ReplayRefused`` when it was taken with other content."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("webhook_nonce_accept must run inside the transaction that stores the post")
    now = timezone.now()
    updated = WebhookNonce.objects.filter(
        provider=claim.provider, nonce=claim.nonce, content_digest=claim.content_digest, accepted_at__isnull=True
    ).update(accepted_at=now)
    if updated:
        return True
    try:
        with transaction.atomic():
            WebhookNonce.objects.create(
                provider=claim.provider,
                nonce=claim.nonce,
                content_digest=claim.content_digest,
                signed_at=claim.signed_at,
                accepted_at=now,
            )
    except IntegrityError:
        # A concurrent post holds the token (its insert has committed by now: the unique index waited for it).
        seen = WebhookNonce.objects.get(provider=claim.provider, nonce=claim.nonce)
        if not constant_time_compare(seen.content_digest, claim.content_digest):
            raise ReplayRefused("This signature's token was already used for other content.") from None
        return False
    return True


def webhook_nonce_note_refused(*, claim: NonceClaim) -> None:
    """Remember a post refused with a retryable error (nothing stored), so the provider's retry of it is taken
    past the tolerance and any other content under its token is not."""
    # get_or_create settles a concurrent insert itself (the other post's row is kept).
    WebhookNonce.objects.get_or_create(
        provider=claim.provider,
        nonce=claim.nonce,
        defaults={"content_digest": claim.content_digest, "signed_at": claim.signed_at},
    )


def webhook_nonces_prune(*, now: datetime | None = None) -> int:
    """Delete tokens no replay can reach any more: accepted ones whose timestamp is outside the tolerance (a replay
    is refused for its age), refused ones once the provider's retries are over."""
    now = now or timezone.now()
    accepted_before = now - timedelta(seconds=settings.EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS)
    refused_before = now - timedelta(seconds=settings.EMAIL_WEBHOOK_RETRY_WINDOW_SECONDS)
    deleted, _ = WebhookNonce.objects.filter(
        Q(accepted_at__isnull=False, signed_at__lt=accepted_before)
        | Q(accepted_at__isnull=True, signed_at__lt=refused_before)
    ).delete()
    if deleted:
        logger.info("channels_app.webhook_nonces_pruned", extra={"count": deleted})
    return deleted
