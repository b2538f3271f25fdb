"""SMS opt-out and opt-in keywords (STOP, START...) -> ``SmsOptOut`` rows and customer timeline events.

A keyword message is a compliance instruction, not a conversation: it creates no ticket message. It is still
visible, as a timeline event on the customer and on their most recently active open ticket, so an agent about to
text them sees why nothing goes out. HELP is not handled here: it is a customer asking for help (a message).
"""

import logging

from django.db import transaction
from django.db.models import F

from channels_app.adapters.base import PayloadError
from channels_app.models import Channel, InboundEvent, SmsOptOut
from channels_app.sms.keywords import OPT_IN, OPT_OUT, keyword_word
from channels_app.types import InboundMessage
from customers.identities import normalise_phone
from customers.services import customer_resolve
from customers.types import IdentityInput
from tickets.models import Ticket
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

logger = logging.getLogger(__name__)


@transaction.atomic
def sms_keyword_record(*, channel: Channel, event: InboundEvent, inbound: InboundMessage) -> str:
    """Record the opt-out/opt-in an inbound keyword message asks for; returns a note for the inbound event.

    Idempotent at the database: the opt-out is unique per phone (``get_or_create``), so a second STOP (or the same
    event processed twice) records nothing new; a START from a number that is not opted out records nothing either.
    ``PayloadError`` when the message is not a keyword or its sender is not a phone number.
    """
    kind = inbound.metadata.get("sms_keyword")
    if kind not in (OPT_OUT, OPT_IN):
        raise PayloadError(f"not an opt-out or opt-in keyword message ({kind!r})")
    try:
        phone = normalise_phone(inbound.sender.value, region=(channel.settings or {}).get("phone_region"))
    except ValueError as exc:
        raise PayloadError(f"sender is not a usable phone number: {exc}") from exc
    # What they texted (a custom keyword Twilio classified is recorded as written); the provider's class otherwise.
    keyword = (keyword_word(inbound.text) or inbound.metadata.get("twilio", {}).get("OptOutType", "") or kind)[:32]
    customer, _, _ = customer_resolve(identity=IdentityInput(kind="phone", value=phone))

    if kind == OPT_OUT:
        recorded = sms_opt_out_record(
            phone=phone, channel=channel, keyword=keyword, customer_id=customer.pk, inbound_event_id=event.pk
        )
        if not recorded:
            return f"already opted out of SMS ({keyword})"
        note = f"opted out of SMS ({keyword})"
    else:
        deleted, _ = SmsOptOut.objects.filter(phone=phone).delete()
        if not deleted:
            return f"opt-in ({keyword}) from a number that was not opted out: nothing to change"
        note = f"opted back in to SMS ({keyword})"
        event_record(
            customer_id=customer.pk,
            ticket_id=_current_ticket_id(customer.pk),
            type=TimelineEvent.Type.SMS_OPTED_IN,
            actor=Actor.customer(),
            params={"keyword": keyword, "phone": phone, "channel_id": channel.pk, "inbound_event_id": event.pk},
        )
    logger.info(
        "channels_app.sms_keyword_recorded",
        extra={"event_id": event.pk, "channel_id": channel.pk, "customer_id": customer.pk, "kind": kind},
    )
    return note


def sms_opt_out_record(*, phone: str, channel: Channel, keyword: str, customer_id: int, **params) -> bool:
    """Opt ``phone`` out of SMS and put ``sms_opted_out`` on the customer's timeline (and their current ticket).
    Returns whether it was new: a number already opted out records nothing (unique phone, ``get_or_create``).

    Used for a STOP we received and for a provider's refusal saying the recipient unsubscribed (Twilio 21610)."""
    _, created = SmsOptOut.objects.get_or_create(phone=phone, defaults={"channel": channel, "keyword": keyword})
    if created:
        event_record(
            customer_id=customer_id,
            ticket_id=_current_ticket_id(customer_id),
            type=TimelineEvent.Type.SMS_OPTED_OUT,
            actor=Actor.customer(),
            params={"keyword": keyword, "phone": phone, "channel_id": channel.pk, **params},
        )
    return created


def _current_ticket_id(customer_id: int) -> int | None:
    """The customer's most recently active open ticket (the one their next message would continue), if any."""
    return (
        Ticket.objects.filter(customer_id=customer_id, status__in=Ticket.ACTIVE_STATUSES, merged_into__isnull=True)
        .order_by(F("last_message_at").desc(nulls_last=True), "-id")
        .values_list("pk", flat=True)
        .first()
    )
