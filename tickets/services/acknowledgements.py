"""The desk's one automatic mail: an acknowledgement of a new ticket, on a channel whose adapter can send it
(``capabilities.acknowledgement``: email) and whose settings ask for it.

Channel settings: ``auto_acknowledge`` (default off), ``auto_acknowledge_text`` with the placeholders
``{ticket_id}``, ``{customer_name}`` and ``{subject}``, and ``auto_acknowledge_interval_hours`` (default 24).

It goes out as an outbound message on the ticket through the normal delivery path, marked ``automatic`` so the
email carries ``Auto-Submitted: auto-replied`` (RFC 3834). It is not an agent's reply: the ticket's status,
assignee and first-response time are left alone. Nothing is sent to a message a machine wrote (the parser's
``is_automatic``: auto-submitted, bulk, list, mailer daemons, bounces, our own messages), to one of our own
addresses, or to an address acknowledged on the channel within the interval, which breaks loops with broken
autoresponders that answer with a new message each time. A suppressed acknowledgement is logged and noted on the
inbound message (``acknowledgement_suppressed``), so an agent sees why the customer got none.
"""

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from channels_app.adapters.registry import capabilities_for
from channels_app.models import Channel
from channels_app.selectors import is_own_email_address
from channels_app.services.deliveries import delivery_create
from customers.models import Customer, CustomerIdentity
from tickets.models import Message

logger = logging.getLogger(__name__)

AUTOMATIC_KIND = "acknowledgement"
IDEMPOTENCY_KEY = "auto-acknowledgement"
DEFAULT_INTERVAL_HOURS = 24
DEFAULT_TEXT = (
    "Hello {customer_name},\n\n"
    'Thank you for your message "{subject}". We have received it as request #{ticket_id}, and one of us will '
    "answer as soon as possible.\n\n"
    "To add anything, reply to this email and keep the request number in the subject.\n\n"
    "This is an automatic message."
)
_PLACEHOLDER = re.compile(r"\{(ticket_id|customer_name|subject)\}")


@dataclass(frozen=True)
class AcknowledgementOutcome:
    message: Message | None
    suppressed_reason: str = ""


@transaction.atomic
def ticket_acknowledge(*, inbound_message_id: int) -> AcknowledgementOutcome:
    """Acknowledge the ticket ``inbound_message_id`` opened, if its channel asks for it and nothing forbids it.

    Locks the customer row, so two new tickets of one sender at once send one acknowledgement within the interval;
    at most one per ticket (a unique idempotency key), so running it twice sends once.
    """
    inbound = (
        Message.objects.select_related("ticket", "channel", "identity", "customer")
        .filter(pk=inbound_message_id, direction=Message.Direction.INBOUND)
        .first()
    )
    if inbound is None or inbound.channel is None:
        return AcknowledgementOutcome(None, "no such inbound message")
    channel = inbound.channel
    options = channel.settings or {}
    if not capabilities_for(channel).acknowledgement or not options.get("auto_acknowledge"):
        return AcknowledgementOutcome(None, "acknowledgements are off for the channel")

    Customer.objects.select_for_update().filter(pk=inbound.customer_id).first()
    existing = Message.objects.filter(ticket_id=inbound.ticket_id, idempotency_key=IDEMPOTENCY_KEY).first()
    if existing is not None:
        return AcknowledgementOutcome(existing)
    reason = _suppressed_reason(inbound, channel=channel, options=options)
    if reason:
        _note_suppressed(inbound, reason)
        return AcknowledgementOutcome(None, reason)

    ticket = inbound.ticket
    text = _PLACEHOLDER.sub(
        lambda match: {
            "ticket_id": str(ticket.pk),
            "customer_name": inbound.customer.name or "there",
            "subject": ticket.subject or "(no subject)",
        }[match.group(1)],
        str(options.get("auto_acknowledge_text") or DEFAULT_TEXT),
    )
    try:
        with transaction.atomic():
            message = Message.objects.create(
                ticket=ticket,
                customer_id=inbound.customer_id,
                channel=channel,
                direction=Message.Direction.OUTBOUND,
                identity=inbound.identity,
                subject=ticket.subject,
                text=text,
                idempotency_key=IDEMPOTENCY_KEY,
                metadata={"automatic": AUTOMATIC_KIND, "acknowledges_message_id": inbound.pk},
            )
    except IntegrityError:
        return AcknowledgementOutcome(Message.objects.get(ticket_id=ticket.pk, idempotency_key=IDEMPOTENCY_KEY))
    delivery_create(message=message, channel=channel, recipient=inbound.identity.value)
    logger.info(
        "tickets.acknowledgement_queued",
        extra={"message_id": message.pk, "ticket_id": ticket.pk, "channel_id": channel.pk},
    )
    return AcknowledgementOutcome(message)


def _suppressed_reason(inbound: Message, *, channel: Channel, options: dict) -> str:
    metadata = inbound.metadata or {}
    if metadata.get("is_bounce"):
        return "bounce"
    if metadata.get("is_automatic"):
        return metadata.get("automatic_reason") or "automatic message"
    identity = inbound.identity
    if identity is None or identity.kind != CustomerIdentity.Kind.EMAIL:
        return "no email address to answer"
    if not channel.is_active:
        return "channel disabled"
    if is_own_email_address(identity.value):
        return "sender is one of our own addresses"
    hours = _interval_hours(options)
    recent = Message.objects.filter(
        channel=channel,
        direction=Message.Direction.OUTBOUND,
        identity=identity,
        idempotency_key=IDEMPOTENCY_KEY,
        created_at__gte=timezone.now() - timedelta(hours=hours),
    )
    if recent.exists():
        return f"sender already acknowledged within {hours:g} hours"
    return ""


def _interval_hours(options: dict) -> float:
    try:
        hours = float(options.get("auto_acknowledge_interval_hours", DEFAULT_INTERVAL_HOURS))
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL_HOURS
    return hours if hours >= 0 else DEFAULT_INTERVAL_HOURS


def _note_suppressed(inbound: Message, reason: str) -> None:
    metadata = dict(inbound.metadata or {})
    metadata["acknowledgement_suppressed"] = reason
    Message.objects.filter(pk=inbound.pk).update(metadata=metadata)
    logger.info(
        "tickets.acknowledgement_suppressed",
        extra={"message_id": inbound.pk, "ticket_id": inbound.ticket_id, "reason": reason},
    )
