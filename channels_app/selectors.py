"""Reads of channels and their inbound events."""

import uuid

from django.db.models import QuerySet

from channels_app.models import Channel, InboundEvent, SmsOptOut
from helpdesk.errors import NotFound
from helpdesk.text import ascii_int
from tickets.models import Message


def channel_get(*, channel_id) -> Channel:
    channel_id = ascii_int(channel_id if isinstance(channel_id, int) else str(channel_id))
    channel = Channel.objects.filter(pk=channel_id).first() if channel_id is not None else None
    if channel is None:
        raise NotFound("No such channel.")
    return channel


def channel_list() -> QuerySet[Channel]:
    return Channel.objects.select_related("default_team").order_by("name", "id")


def inbound_event_list(*, status: str | None = None, channel_id: int | None = None) -> QuerySet[InboundEvent]:
    events = InboundEvent.objects.select_related("channel").defer("raw").order_by("-id")
    if status:
        events = events.filter(status=status)
    if channel_id:
        events = events.filter(channel_id=channel_id)
    return events


def inbound_event_get(*, public_id, channel: Channel | None = None) -> InboundEvent:
    events = InboundEvent.objects.select_related("channel").defer("raw")
    if channel is not None:
        events = events.filter(channel=channel)
    try:
        event = events.filter(public_id=uuid.UUID(str(public_id))).first()
    except ValueError:
        event = None
    if event is None:
        raise NotFound("No such inbound event.")
    return event


def inbound_event_message(*, event: InboundEvent) -> Message | None:
    """The message an API-channel event became (the event's provider id is the message's)."""
    return (
        Message.objects.filter(channel_id=event.channel_id, provider_id=event.provider_id)
        .only("pk", "ticket_id", "customer_id")
        .first()
    )


def sms_opted_out(*, phone: str) -> bool:
    """Whether the E.164 ``phone`` has opted out of SMS (texted STOP and not START since)."""
    return SmsOptOut.objects.filter(phone=phone).exists()


def sms_opted_out_phones(*, phones) -> set[str]:
    """Which of ``phones`` (E.164) have opted out: one query for a notice's or survey's whole batch."""
    return set(SmsOptOut.objects.filter(phone__in=list(phones)).values_list("phone", flat=True))


def channel_list_with_poll_state() -> QuerySet[Channel]:
    # imap_state: the last poll of each mailbox, in the same query (a reverse one-to-one).
    return channel_list().select_related("imap_state")


def channel_get_for_update(*, channel_id: int) -> Channel:
    """The channel row, locked until the caller's transaction ends (for a check-then-save of a stale form)."""
    channel = Channel.objects.select_for_update().filter(pk=channel_id).first()
    if channel is None:
        raise NotFound("No such channel.")
    return channel


def imap_channel_ids() -> list[int]:
    """Active email channels with an IMAP host configured, the ones beat polls."""
    return list(
        Channel.objects.filter(kind=Channel.Kind.EMAIL, is_active=True, settings__has_key="imap_host")
        .exclude(settings__imap_host="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def own_email_addresses() -> list[str]:
    """Every email channel's address: mail from one of them is the desk writing to itself (a loop, a forward)."""
    return list(Channel.objects.filter(kind=Channel.Kind.EMAIL).values_list("address", flat=True))


def is_own_email_address(address: str) -> bool:
    return Channel.objects.filter(kind=Channel.Kind.EMAIL, address__iexact=address).exists()
