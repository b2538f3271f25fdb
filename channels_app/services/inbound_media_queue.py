"""Queueing the MMS media an inbound message refers to: one row per file, each fetched by its own task."""

import logging

from django.db import transaction

from channels_app.models import InboundMedia
from channels_app.tasks.media import fetch_inbound_media

logger = logging.getLogger(__name__)

# Twilio sends at most 10 media per message; more can only come from a forged or broken payload (kept raw anyway).
MAX_MEDIA_PER_MESSAGE = 10


@transaction.atomic
def inbound_media_queue(*, message, media) -> None:
    """Create one InboundMedia row per item of ``media`` ([{"url", "content_type"}...]) and enqueue the fetches
    after commit. Idempotent: the (message, index) constraint keeps a second call from adding rows, and only rows
    still pending are enqueued again."""
    rows = [
        InboundMedia(
            message=message,
            index=index,
            url=str(item.get("url") or "")[:2000],
            content_type=str(item.get("content_type") or "")[:100],
        )
        for index, item in enumerate(media[:MAX_MEDIA_PER_MESSAGE])
    ]
    if len(media) > MAX_MEDIA_PER_MESSAGE:
        logger.warning("channels_app.media_over_limit", extra={"message_id": message.pk, "count": len(media)})
    InboundMedia.objects.bulk_create(rows, ignore_conflicts=True)
    # ignore_conflicts leaves the primary keys unset, so they are read back.
    pending = InboundMedia.objects.filter(message=message, status=InboundMedia.Status.PENDING)
    for media_id in pending.values_list("pk", flat=True):
        transaction.on_commit(lambda pk=media_id: fetch_inbound_media.delay(pk), robust=True)
