"""Turning a stored inbound event into messages through its channel's adapter and the ingestion service.

A bounce is not a customer's message: it goes to ``email_bounce_record`` instead of ingestion, and opens no ticket.
A new email ticket may be acknowledged automatically, after commit (``ticket_acknowledge``).
An SMS opt-out or opt-in keyword (STOP, START...) is recorded by ``sms_keyword_record`` and is not a ticket message;
media a message refers to by URL (MMS) are fetched by a task after commit (``inbound_media_queue``).
"""

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from channels_app.adapters.base import PayloadError
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel, InboundEvent
from channels_app.services.bounces import email_bounce_record
from channels_app.services.inbound_media import inbound_media_queue
from channels_app.services.sms_keywords import sms_keyword_record
from realtime.publish import message_created_publish
from tickets.errors import IngestRejected
from tickets.services import acknowledgements
from tickets.services.ingest import IngestResult, message_ingest

logger = logging.getLogger(__name__)

DONE = (InboundEvent.Status.PROCESSED, InboundEvent.Status.QUARANTINED)


class ProcessingShouldRetry(Exception):
    """Processing failed for a reason that may pass; the event is marked failed and the task retries."""


def inbound_event_process(*, event_id: int, event: InboundEvent | None = None) -> list[IngestResult]:
    """Parse and ingest one event. A processed or quarantined event is left alone (safe to call twice).

    ``event`` is for a caller that has just stored it (a synchronous import): it saves reading it back.

    Bad payloads are quarantined with the reason (no retry); unexpected errors mark the event failed with the
    reason and raise ``ProcessingShouldRetry`` until ``INBOUND_MAX_ATTEMPTS``. The raw payload is never touched.
    """
    if event is None:
        event = InboundEvent.objects.select_related("channel").filter(pk=event_id).first()
    if event is None or event.status in DONE:
        return []
    InboundEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    event.attempts += 1
    try:
        adapter = adapter_for(event.channel)
        messages = adapter.parse(channel=event.channel, payload=bytes(event.raw), content_type=event.content_type)
        with transaction.atomic():
            results, notes = [], []
            for message in messages:
                bounce = message.metadata.get("bounce")
                if bounce:
                    outcome = email_bounce_record(channel=event.channel, event=event, bounce=bounce)
                    if outcome.is_matched or bounce.get("is_certain", True):
                        notes.append(outcome.reason)
                        continue
                    # Only its wording made it a bounce, it came from an ordinary address and it returns nothing
                    # we sent: it may be a person's, so it is not swallowed.
                    notes.append("bounce-like message that matches nothing we sent, taken in as a message")
                if message.metadata.get("sms_keyword") in ("opt_out", "opt_in"):
                    notes.append(sms_keyword_record(channel=event.channel, event=event, inbound=message))
                    continue
                result = message_ingest(channel=event.channel, inbound=message)
                if result.is_new_message:
                    message_created_publish(message=result.message)
                if result.is_new_message and message.metadata.get("media"):
                    inbound_media_queue(message=result.message, media=message.metadata["media"])
                results.append(result)
            InboundEvent.objects.filter(pk=event.pk).update(
                status=InboundEvent.Status.PROCESSED,
                reason="; ".join(notes)[:2000],
                processed_at=timezone.now(),
                updated_at=timezone.now(),
            )
            # Checked here too, so a channel without acknowledgements costs no task and no query per new ticket.
            if event.channel.kind == Channel.Kind.EMAIL and (event.channel.settings or {}).get("auto_acknowledge"):
                for result in results:
                    if result.is_new_ticket:
                        transaction.on_commit(
                            lambda pk=result.message.pk: acknowledgements.ticket_acknowledge(inbound_message_id=pk),
                            robust=True,
                        )
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


def _mark(event: InboundEvent, status: str, reason: str) -> None:
    InboundEvent.objects.filter(pk=event.pk).exclude(status=InboundEvent.Status.PROCESSED).update(
        status=status, reason=reason, updated_at=timezone.now()
    )
