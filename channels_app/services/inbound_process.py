"""Turning a stored inbound event into messages through its channel's adapter, then
``inbound_messages_dispatch``, which decides what each message is (a bounce, an SMS keyword, a customer's message)
and records it."""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from channels_app.adapters.base import PayloadError
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import InboundEvent
from channels_app.services.inbound_dispatch import inbound_messages_dispatch
from tickets.errors import IngestRejected
from tickets.services.ingest import IngestResult

logger = logging.getLogger(__name__)

DONE = (InboundEvent.Status.PROCESSED, InboundEvent.Status.QUARANTINED)


class ProcessingShouldRetry(Exception):
    """Processing failed for a reason that may pass; the event is marked failed and the task retries."""


class _ProcessedMeanwhile(Exception):
    """Another task took the event in while this one was at it: this one's work is rolled back."""


def inbound_event_process(
    *, event_id: int, event: InboundEvent | None = None, is_attempt_counted: bool = False
) -> list[IngestResult]:
    """Parse and ingest one event. A processed or quarantined event is left alone (safe to call twice).

    ``event`` is for a caller that has just stored it (a synchronous import): it saves reading it back;
    ``is_attempt_counted`` that it was stored with this attempt counted (``inbound_event_receive(is_attempted_now=
    True)``), which saves an update.

    Bad payloads are quarantined with the reason (no retry); unexpected errors mark the event failed with the
    reason and raise ``ProcessingShouldRetry`` until ``INBOUND_MAX_ATTEMPTS``. The raw payload is never touched.
    """
    if event is None:
        event = InboundEvent.objects.select_related("channel").filter(pk=event_id).first()
    if event is None or event.status in DONE:
        return []
    if not is_attempt_counted:
        # Committed before anything is parsed, so an event that kills its worker runs out of attempts too.
        InboundEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())
        event.attempts += 1
    try:
        adapter = adapter_for(event.channel)
        messages = adapter.parse(channel=event.channel, payload=bytes(event.raw), content_type=event.content_type)
        try:
            # First without a savepoint per message: a message stored already (the same email delivered twice
            # under two events) makes the whole transaction roll back instead ...
            results = _dispatch(event=event, messages=messages, is_clash_raised=True)
        except (IntegrityError, IngestRejected):
            # ... and the event is taken again the careful way, which recognises it (and rejects for good what
            # is to be rejected).
            results = _dispatch(event=event, messages=messages, is_clash_raised=False)
    except _ProcessedMeanwhile:
        logger.info("channels_app.inbound_processed_meanwhile", extra={"event_id": event.pk})
        return []
    except (PayloadError, IngestRejected, AdapterNotFound) as exc:
        _mark(event, InboundEvent.Status.QUARANTINED, str(exc))
        logger.warning("channels_app.inbound_quarantined", extra={"event_id": event.pk})
        return []
    except Exception as exc:
        _mark(event, InboundEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000])
        logger.exception("channels_app.inbound_failed", extra={"event_id": event.pk, "attempt": event.attempts})
        if event.attempts < settings.HELPDESK["INBOUND_MAX_ATTEMPTS"]:
            raise ProcessingShouldRetry(str(exc)) from exc
        return []
    logger.info("channels_app.inbound_processed", extra={"event_id": event.pk, "messages": len(results)})
    return results


def _dispatch(*, event: InboundEvent, messages: list, is_clash_raised: bool) -> list[IngestResult]:
    with transaction.atomic():
        results, notes = inbound_messages_dispatch(event=event, messages=messages, is_clash_raised=is_clash_raised)
        # Only an event not done yet is marked: two tasks for one event (beat's sweep enqueued it again while its
        # first task was still in the broker, or the broker delivered a task again after a lost connection) may run
        # at once. The second one's update waits for the first's commit, then matches nothing, and everything it
        # did is rolled back: the event is taken in once, whatever its messages' provider ids.
        is_marked = (
            InboundEvent.objects.filter(pk=event.pk)
            .exclude(status__in=DONE)
            .update(
                status=InboundEvent.Status.PROCESSED,
                reason="; ".join(notes)[:2000],
                processed_at=timezone.now(),
                updated_at=timezone.now(),
            )
        )
        if not is_marked:
            raise _ProcessedMeanwhile
    return results


def _mark(event: InboundEvent, status: str, reason: str) -> None:
    InboundEvent.objects.filter(pk=event.pk).exclude(status=InboundEvent.Status.PROCESSED).update(
        status=status, reason=reason, updated_at=timezone.now()
    )
