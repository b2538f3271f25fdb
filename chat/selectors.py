"""Reads for the chat widget: a visitor's own conversation (never notes, never anyone else's messages) and the
widget's configuration. Which channel an agent's reply goes out on once the visitor has left is the chat
adapter's ``continuation``."""

import uuid
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import F, Prefetch
from django.urls import reverse
from django.utils import timezone
from rest_framework.fields import DateTimeField

from channels_app.models import Channel
from chat.models import ChatVisitor
from helpdesk.errors import NotFound
from realtime.groups import visitor_group
from realtime.presence import agents_online
from tickets.models import Attachment, Message, Ticket

PAGE_SIZE = 100
_DATETIME = DateTimeField()  # the REST API's rendering of times, so pushes and answers say the same
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def chat_channel_get(*, public_key: str) -> Channel | None:
    return Channel.objects.filter(public_key=public_key, kind=Channel.Kind.CHAT, is_active=True).first()


def chat_visitor_get(*, channel: Channel, public_id: uuid.UUID) -> ChatVisitor | None:
    visitor = ChatVisitor.objects.filter(channel=channel, public_id=public_id).first()
    if visitor is not None:
        # The caller's channel row, so what the visitor does next does not read it again.
        visitor.channel = channel
    return visitor


def _conversation_messages(visitor: ChatVisitor):
    """Messages the visitor may see: from and to their customer (inbound and outbound, never notes), on the tickets
    their customer has chatted on through this channel, whichever channel each message took (an agent's reply by
    email after the visitor left belongs to the conversation). A ticket's messages from other people (a colleague
    on Cc of an email ticket) are not theirs to read."""
    chat_tickets = Message.objects.filter(customer_id=visitor.customer_id, channel_id=visitor.channel_id).values(
        "ticket_id"
    )
    return Message.objects.filter(
        customer_id=visitor.customer_id,
        ticket_id__in=chat_tickets,
        direction__in=(Message.Direction.INBOUND, Message.Direction.OUTBOUND),
    )


def visitor_messages_page(*, visitor: ChatVisitor, after: int | None = None) -> list[Message]:
    """Oldest first, at most ``PAGE_SIZE``, after message id ``after`` (a keyset cursor). Two queries whatever the
    size: the messages (with their authors) and their attachments."""
    messages = _conversation_messages(visitor)
    if after is not None:
        messages = messages.filter(pk__gt=after)
    return list(
        messages.select_related("author__agent_profile")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("pk")))
        .order_by("pk")[:PAGE_SIZE]
    )


def visitor_message_get(*, visitor: ChatVisitor, message_id: int) -> Message:
    """One message of the visitor's conversation; NotFound alike for a missing one and another visitor's."""
    message = _conversation_messages(visitor).filter(pk=message_id).first()
    if message is None:
        raise NotFound("No such message.")
    return message


def visitor_attachment_get(*, visitor: ChatVisitor, attachment_id: int) -> Attachment:
    """An attachment of the visitor's conversation; NotFound alike for a missing one and another visitor's."""
    attachment = Attachment.objects.filter(
        pk=attachment_id, message__in=_conversation_messages(visitor).values("pk")
    ).first()
    if attachment is None:
        raise NotFound("No such attachment.")
    return attachment


def chat_message_data(*, message: Message, channel: Channel) -> dict:
    """A message as the widget sees it, over REST and in websocket events, ready for JSON (times as the REST API
    writes them). ``message`` should come with ``author__agent_profile`` and ``attachments`` loaded
    (``visitor_messages_page`` does)."""
    author_name = ""
    if message.direction == Message.Direction.OUTBOUND and message.author is not None:
        profile = getattr(message.author, "agent_profile", None)
        author_name = (profile.display_name if profile else "") or message.author.get_short_name() or ""
    base = settings.PUBLIC_BASE_URL
    return {
        "id": message.pk,
        "ticket_id": message.ticket_id,
        "direction": message.direction,
        "text": message.text,
        "created_at": _DATETIME.to_representation(message.created_at),
        "author_name": author_name,
        # A message the desk wrote first (a notice, an outage, a survey) shows as a card, labelled by its purpose.
        "card": _card_purpose(message),
        "attachments": [
            {
                "id": attachment.pk,
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "url": base
                + reverse(
                    "chat:attachment-download",
                    kwargs={"public_key": channel.public_key, "attachment_id": attachment.pk},
                ),
            }
            for attachment in message.attachments.all()
        ],
    }


# --- Configuration ---------------------------------------------------------------------------------------------


def business_hours_is_open(*, business_hours: dict | None, now: datetime | None = None) -> bool:
    """Whether ``now`` falls in one of today's ranges, in the channel's time zone. No business hours: always
    open. A day not listed is closed; ranges are ``[["09:00", "17:00"], ...]``, end exclusive."""
    if not business_hours:
        return True
    try:
        zone = ZoneInfo(business_hours.get("time_zone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = (now or timezone.now()).astimezone(zone)
    ranges = (business_hours.get("days") or {}).get(DAY_KEYS[local.weekday()]) or []
    current = local.time().replace(tzinfo=None)
    return any(time.fromisoformat(start) <= current < time.fromisoformat(end) for start, end in ranges)


@dataclass(frozen=True)
class WidgetConfig:
    name: str
    color: str
    greeting: str
    texts: dict
    is_open: bool
    agents_online: bool
    expected_reply_minutes: int | None
    pre_chat_form: bool
    max_message_chars: int
    max_upload_bytes: int
    offer_email: bool


def widget_config(*, channel: Channel) -> WidgetConfig:
    options = channel.settings or {}
    is_open = business_hours_is_open(business_hours=options.get("business_hours"))
    anyone_online = agents_online(channel=channel)
    return WidgetConfig(
        name=channel.name,
        color=options.get("color") or "",
        greeting=options.get("greeting") or "",
        texts=dict(options.get("texts") or {}),
        is_open=is_open,
        agents_online=anyone_online,
        expected_reply_minutes=options.get("expected_reply_minutes"),
        pre_chat_form=bool(options.get("pre_chat_form", False)),
        max_message_chars=settings.HELPDESK["CHAT_MAX_MESSAGE_CHARS"],
        max_upload_bytes=settings.HELPDESK["CHAT_MAX_UPLOAD_BYTES"],
        offer_email=not is_open or not anyone_online,
    )


# --- Replies after the visitor left ------------------------------------------------------------------------------


def visitor_current_ticket_id(*, visitor: ChatVisitor) -> int | None:
    """The ticket the visitor's next message continues (the rule of ``message_ingest`` for channels that continue
    the open ticket): their customer's latest active ticket; None before their first message."""
    return (
        Ticket.objects.filter(
            customer_id=visitor.customer_id, status__in=Ticket.ACTIVE_STATUSES, merged_into__isnull=True
        )
        .order_by(F("last_message_at").desc(nulls_last=True), "-id")
        .values_list("pk", flat=True)
        .first()
    )


def ticket_visitor_groups(*, ticket_id: int, customer_id: int) -> list[str]:
    """The groups of the chat visitors whose conversation the ticket is (the customer wrote on it through their
    chat channel): where an agent's typing and read receipts on it go. One query."""
    chat_channels = Message.objects.filter(
        ticket_id=ticket_id, customer_id=customer_id, channel__kind=Channel.Kind.CHAT
    ).values("channel_id")
    public_ids = ChatVisitor.objects.filter(customer_id=customer_id, channel_id__in=chat_channels).values_list(
        "public_id", flat=True
    )
    return [visitor_group(public_id) for public_id in public_ids]


def _card_purpose(message: Message) -> str:
    outreach = (message.metadata or {}).get("outreach") if message.direction == Message.Direction.OUTBOUND else None
    purpose = outreach.get("purpose") if isinstance(outreach, dict) else None
    return purpose if isinstance(purpose, str) else ""
