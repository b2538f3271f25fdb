"""Storing an inbound payload raw, once per provider id, before anything parses it."""

import contextlib
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from channels_app.models import Channel, InboundEvent
from channels_app.tasks.inbound import process_inbound_event
from helpdesk.text import storable_text

logger = logging.getLogger(__name__)


def inbound_event_receive(
    *,
    channel: Channel,
    provider_id: str,
    raw: bytes,
    content_type: str = "",
    enqueue: bool = True,
    is_attempted_now: bool = False,
) -> tuple[InboundEvent, bool]:
    """Store the payload and enqueue its processing after commit. Returns ``(event, created)``; the same
    provider id again returns the stored event and enqueues nothing. ``enqueue=False`` is for callers that
    process the event themselves at once (bulk imports); beat still picks it up if they do not.

    ``is_attempted_now``: the caller processes a new event right away (the chat widget's request), so its first
    attempt is counted in the insert (``inbound_event_process(..., is_attempt_counted=True)``), not by an update of
    its own; should the process die meanwhile, the sweep sees the attempt as it would have.

    The provider id is made storable (``helpdesk.text``: a NUL in a Message-ID or a posted id is not a 500); the
    raw payload is stored as the bytes it is."""
    provider_id = storable_text(provider_id)[:255]
    try:
        # Inside a caller's transaction, a savepoint keeps it usable after a duplicate's IntegrityError; outside one
        # the insert commits on its own: one statement instead of BEGIN, INSERT and COMMIT (and on_commit runs at
        # once).
        with transaction.atomic() if transaction.get_connection().in_atomic_block else contextlib.nullcontext():
            event = InboundEvent.objects.create(
                channel=channel,
                provider_id=provider_id,
                raw=raw,
                content_type=storable_text(content_type)[:100],
                attempts=1 if is_attempted_now else 0,
            )
            event_id = event.pk
            if enqueue:
                transaction.on_commit(lambda: process_inbound_event.delay(event_id), robust=True)
    except IntegrityError:
        existing = InboundEvent.objects.filter(channel=channel, provider_id=provider_id).first()
        if existing is None:
            raise
        logger.info("channels_app.inbound_duplicate", extra={"event_id": existing.pk, "channel_id": channel.pk})
        return existing, False
    logger.info("channels_app.inbound_received", extra={"event_id": event.pk, "channel_id": channel.pk})
    return event, True


def inbound_event_retry(*, event: InboundEvent) -> bool:
    """Process a failed or quarantined event again (an admin's decision after a fix). Returns whether it was
    re-queued; processed events are never re-run."""
    updated = InboundEvent.objects.filter(
        pk=event.pk, status__in=[InboundEvent.Status.FAILED, InboundEvent.Status.QUARANTINED]
    ).update(status=InboundEvent.Status.RECEIVED, reason="", attempts=0, updated_at=timezone.now())
    if updated:
        event_id = event.pk
        transaction.on_commit(lambda: process_inbound_event.delay(event_id), robust=True)
    return bool(updated)
