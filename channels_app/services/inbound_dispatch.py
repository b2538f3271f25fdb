"""What becomes of each message parsed from one inbound event: a bounce is recorded on the delivery it returns, an
SMS keyword on the sender's opt-out, anything else is ingested as a customer's message.

One function for the event-at-a-time worker (``inbound_event_process``) and the batch import of a mailbox
(``channels_app.services.mailbox_import.email_import_many``), so both apply the same rules to each message.
"""

from django.db import transaction

from channels_app.models import Channel, InboundEvent
from channels_app.services.bounces import email_bounce_record
from channels_app.services.inbound_media_queue import inbound_media_queue
from channels_app.services.sms_keywords import sms_keyword_record
from channels_app.types import InboundMessage
from tickets.services import acknowledgements
from tickets.services.ingest import IngestResult, message_ingest


def inbound_messages_dispatch(
    *, event: InboundEvent, messages: list[InboundMessage], publish: bool = True, is_clash_raised: bool = False
) -> tuple[list[IngestResult], list[str]]:
    """Record or ingest each of ``messages`` (parsed from ``event``). Returns the ingestion results and the notes
    to keep as the event's reason. The caller holds a transaction (a savepoint of its own, so a failure here leaves
    nothing behind); acknowledgements of new email tickets are sent after it commits.

    ``publish=False`` is for a bulk import, which tells the agents once per batch instead of pushing every
    message live (``messages_imported``). ``is_clash_raised`` as in ``message_ingest``: the caller rolls back and
    tries again without it when a message turns out to be stored already."""
    channel = event.channel
    results, notes = [], []
    for message in messages:
        bounce = message.metadata.get("bounce")
        if bounce:
            outcome = email_bounce_record(channel=channel, event=event, bounce=bounce)
            if outcome.is_matched or bounce.get("is_certain", True):
                notes.append(outcome.reason)
                continue
            # Only its wording made it a bounce, it came from an ordinary address and it returns nothing we sent:
            # it may be a person's, so it is not swallowed.
            notes.append("bounce-like message that matches nothing we sent, taken in as a message")
        if message.metadata.get("sms_keyword") in ("opt_out", "opt_in"):
            notes.append(sms_keyword_record(channel=channel, event=event, inbound=message))
            continue
        result = message_ingest(channel=channel, inbound=message, publish=publish, is_clash_raised=is_clash_raised)
        if result.is_new_message and message.metadata.get("media"):
            inbound_media_queue(message=result.message, media=message.metadata["media"])
        results.append(result)
    # Checked here too, so a channel without acknowledgements costs no task and no query per new ticket.
    if channel.kind == Channel.Kind.EMAIL and (channel.settings or {}).get("auto_acknowledge"):
        for result in results:
            if result.is_new_ticket:
                transaction.on_commit(
                    lambda pk=result.message.pk: acknowledgements.ticket_acknowledge(inbound_message_id=pk),
                    robust=True,
                )
    return results, notes
