"""Agents' replies (out on a channel) and internal notes."""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from channels_app.adapters.base import PURPOSE_REPLY
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel
from channels_app.services.deliveries import delivery_create
from customers.identities import normalise_identity
from customers.models import CustomerIdentity
from helpdesk.errors import Conflict, DomainError
from realtime.publish import message_created_publish
from tickets.html import html_to_text, sanitise_html
from tickets.models import Message, Ticket, TicketParticipant
from tickets.selectors.recipients import customer_recipient_identity
from tickets.services.attachments import attachment_store
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

logger = logging.getLogger(__name__)

_MENTION = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")
MAX_REPLY_CC = 20


@dataclass(frozen=True)
class ReplyAttachment:
    """A file an agent attaches to a reply (read in full: the size limits are checked before it is stored)."""

    filename: str
    content_type: str
    content: bytes


class StaleReply(Conflict):
    """Someone else replied on the ticket after the message the author last saw: sending now could answer twice.
    ``newer`` is that reply; the author may look at it and send anyway."""

    code = "stale_reply"

    def __init__(self, detail: str, *, newer: Message):
        super().__init__(detail)
        self.newer = newer


def reply_channel_default(*, ticket: Ticket) -> Channel | None:
    """The channel the customer last used, if it can still send; else the one the ticket started on.

    A conversation that left its channel continues where the channel's adapter says (``continuation``): a chat the
    visitor has left (or is not connected to) hands over to the chat channel's email channel when the customer has
    an email address."""
    for channel in (ticket.customer.last_channel, ticket.channel):
        if channel is not None and channel.is_active:
            try:
                adapter = adapter_for(channel)
            except AdapterNotFound:
                continue
            return adapter.continuation(channel=channel, customer_id=ticket.customer_id) or channel
    return None


def reply_recipient(*, ticket: Ticket, channel: Channel) -> CustomerIdentity:
    """Where on ``channel`` the customer is reached: the identity they last wrote from on it, else their best
    identity of a kind the channel can address (verified and primary first)."""
    identity = customer_recipient_identity(customer_id=ticket.customer_id, channel=channel)
    if identity is None:
        readable = " or ".join(adapter_for(channel).recipient_identity_kinds)
        raise Conflict(f"The customer has no {readable} to reach them on {channel.name}.", code="no_recipient_identity")
    return identity


@transaction.atomic
def reply_create(
    *,
    ticket: Ticket,
    author,
    text: str,
    html: str = "",
    channel: Channel | None = None,
    status: str | None = None,
    idempotency_key: str = "",
    cc: Sequence[str] = (),
    attachments: Sequence[ReplyAttachment] = (),
    last_seen_message_id: int | None = None,
) -> Message:
    """Write a reply to the customer and queue it on ``channel`` (default: the one they last used).

    ``cc`` (on a channel whose adapter declares ``capabilities.copies``: email) copies further addresses; they
    become participants of the ticket, so their answers thread onto it.

    The same ``idempotency_key`` on the same ticket returns the first reply (a double-click sends once).
    The first reply sets the ticket's first-response time; an unassigned ticket is assigned to its author.

    ``attachments`` (where ``capabilities.attachments``: email) are stored with the message before its delivery is
    queued. With ``last_seen_message_id`` (the newest message of the ticket the author had seen), a reply by another
    agent written after it raises ``StaleReply`` (checked under the ticket's lock, so two agents answering at once
    cannot both pass); omit it to send anyway.
    """
    existing = _message_with_key(ticket=ticket, key=idempotency_key, direction=Message.Direction.OUTBOUND)
    if existing is not None:
        return existing
    ticket = (
        # of=("self",): PostgreSQL cannot lock the nullable side of the outer joins; only the ticket is locked.
        Ticket.objects.select_for_update(of=("self",))
        .select_related("customer", "customer__last_channel", "channel")
        .get(pk=ticket.pk)
    )
    if ticket.status == Ticket.Status.CLOSED:
        raise Conflict("This ticket is closed; start a new ticket to write to the customer.", code="ticket_closed")
    if last_seen_message_id is not None:
        _refuse_stale(ticket=ticket, author=author, last_seen_message_id=last_seen_message_id)
    if channel is None:
        channel = reply_channel_default(ticket=ticket)
        if channel is None:
            raise DomainError("No channel can reach this customer; choose one.", code="no_channel")
    elif not channel.is_active:
        raise DomainError(f"The channel {channel.name} is disabled.", code="channel_disabled")
    try:
        adapter = adapter_for(channel)
    except AdapterNotFound as exc:
        raise DomainError(f"The channel {channel.name} cannot send messages yet.", code="channel_cannot_send") from exc
    recipient = reply_recipient(ticket=ticket, channel=channel)
    reach = adapter.reachability(channel=channel, identity=recipient, purpose=PURPOSE_REPLY)
    if not reach.is_reachable:
        raise DomainError(reach.detail, code=reach.reason)
    cc_addresses = _cc_addresses(cc, channel=channel, can_copy=adapter.capabilities.copies, recipient=recipient.value)
    _check_attachments(attachments, channel=channel, can_attach=adapter.capabilities.attachments)
    clean_html = sanitise_html(html)
    body = text or html_to_text(clean_html)
    if not body.strip():
        raise DomainError("A reply needs text.", code="empty_reply")
    try:
        with transaction.atomic():
            message = Message.objects.create(
                ticket=ticket,
                customer_id=ticket.customer_id,
                channel=channel,
                direction=Message.Direction.OUTBOUND,
                author=author,
                identity=recipient,
                subject=ticket.subject,
                text=body,
                html=clean_html,
                idempotency_key=idempotency_key,
                metadata={"cc": cc_addresses} if cc_addresses else {},
            )
    except IntegrityError:
        existing = _message_with_key(ticket=ticket, key=idempotency_key, direction=Message.Direction.OUTBOUND)
        if existing is None:
            raise
        return existing
    for attachment in attachments:
        attachment_store(
            message=message,
            filename=attachment.filename,
            content_type=attachment.content_type,
            content=attachment.content,
        )
    delivery_create(message=message, channel=channel, recipient=recipient.value)
    if cc_addresses:
        role = TicketParticipant.Role.CC
        TicketParticipant.objects.bulk_create(
            [TicketParticipant(ticket=ticket, email=a, role=role, first_seen_message=message) for a in cc_addresses],
            ignore_conflicts=True,
        )

    now = timezone.now()
    updates = {"last_message_at": now, "version": F("version") + 1}
    if ticket.first_response_at is None:
        updates["first_response_at"] = now
    actor = Actor.agent(author)
    if ticket.assignee_id is None and author is not None:
        updates["assignee"] = author
        event_record(
            customer_id=ticket.customer_id,
            ticket_id=ticket.pk,
            type=TimelineEvent.Type.ASSIGNED,
            actor=actor,
            params={"from": None, "to": author.pk, "reason": "replied"},
        )
    new_status = status or (Ticket.Status.OPEN if ticket.status == Ticket.Status.NEW else None)
    if new_status and new_status != ticket.status:
        updates.update(_status_fields(new_status, now))
        event_record(
            customer_id=ticket.customer_id,
            ticket_id=ticket.pk,
            type=TimelineEvent.Type.STATUS_CHANGED,
            actor=actor,
            params={"from": ticket.status, "to": new_status},
        )
    Ticket.objects.filter(pk=ticket.pk).update(**updates)
    message_created_publish(message=message)
    logger.info(
        "tickets.reply_created",
        extra={"message_id": message.pk, "ticket_id": ticket.pk, "channel_id": channel.pk},
    )
    return message


def reply_newer_than(*, ticket: Ticket, author, last_seen_message_id: int) -> Message | None:
    """The newest reply to the customer on ``ticket`` written by someone other than ``author`` after message
    ``last_seen_message_id``, or None."""
    newer = Message.objects.filter(
        ticket=ticket, direction=Message.Direction.OUTBOUND, pk__gt=last_seen_message_id
    ).select_related("author__agent_profile", "channel")
    if author is not None:
        newer = newer.exclude(author=author)
    return newer.order_by("-pk").first()


def _refuse_stale(*, ticket: Ticket, author, last_seen_message_id: int) -> None:
    newer = reply_newer_than(ticket=ticket, author=author, last_seen_message_id=last_seen_message_id)
    if newer is not None:
        raise StaleReply("Someone else replied to the customer since you opened this ticket.", newer=newer)


def _check_attachments(attachments: Sequence[ReplyAttachment], *, channel: Channel, can_attach: bool) -> None:
    if not attachments:
        return
    if not can_attach:
        raise DomainError(f"Attachments go out by email only, not on {channel.name}.", code="attachments_not_supported")
    limits = settings.HELPDESK
    for attachment in attachments:
        if len(attachment.content) > limits["MAX_ATTACHMENT_BYTES"]:
            raise DomainError(
                f"{attachment.filename} is larger than {limits['MAX_ATTACHMENT_BYTES']} bytes.",
                code="attachment_too_large",
            )
    if sum(len(a.content) for a in attachments) > limits["MAX_ATTACHMENTS_TOTAL_BYTES"]:
        raise DomainError(
            f"The attachments together are larger than {limits['MAX_ATTACHMENTS_TOTAL_BYTES']} bytes.",
            code="attachments_too_large",
        )


def _cc_addresses(cc: Sequence[str], *, channel: Channel, can_copy: bool, recipient: str) -> list[str]:
    """The normalised, distinct Cc addresses, without the recipient; a clear error for the first unusable one."""
    if not cc:
        return []
    if not can_copy:
        raise DomainError(f"Copies (Cc) go out by email only, not on {channel.name}.", code="cc_not_supported")
    if len(cc) > MAX_REPLY_CC:
        raise DomainError(f"At most {MAX_REPLY_CC} addresses may be copied.", code="too_many_cc")
    addresses = []
    for value in cc:
        try:
            address = normalise_identity("email", value)
        except ValueError as exc:
            raise DomainError(f"Cc {value!r} is not a valid email address.", code="invalid_cc") from exc
        if address != recipient and address not in addresses:
            addresses.append(address)
    return addresses


@transaction.atomic
def note_create(*, ticket: Ticket, author, text: str, idempotency_key: str = "") -> Message:
    """An internal note: never sent to the customer. @username mentions of agents are recorded."""
    if not text.strip():
        raise DomainError("A note needs text.", code="empty_note")
    existing = _message_with_key(ticket=ticket, key=idempotency_key, direction=Message.Direction.NOTE)
    if existing is not None:
        return existing
    message = Message.objects.create(
        ticket=ticket,
        customer_id=ticket.customer_id,
        direction=Message.Direction.NOTE,
        author=author,
        text=text,
        idempotency_key=idempotency_key,
    )
    mentioned = _mentioned_agent_ids(text)
    event_record(
        customer_id=ticket.customer_id,
        ticket_id=ticket.pk,
        type=TimelineEvent.Type.NOTE_ADDED,
        actor=Actor.agent(author),
        params={"message_id": message.pk, "mentioned_user_ids": mentioned},
    )
    # One event per mentioned agent, so "what mentions me" is a query on (type, params); a retried note returned
    # above by its idempotency key records none again.
    for user_id in mentioned:
        event_record(
            customer_id=ticket.customer_id,
            ticket_id=ticket.pk,
            type=TimelineEvent.Type.AGENT_MENTIONED,
            actor=Actor.agent(author),
            params={"message_id": message.pk, "user_id": user_id},
        )
    Ticket.objects.filter(pk=ticket.pk).update(version=F("version") + 1)
    message_created_publish(message=message)
    return message


def _message_with_key(*, ticket: Ticket, key: str, direction: str) -> Message | None:
    """The message already written with this idempotency key; Conflict if the key was used for another kind
    of message (a reply must never come back as a note, nor a note as a sent reply)."""
    if not key:
        return None
    existing = Message.objects.filter(ticket=ticket, idempotency_key=key).first()
    if existing is not None and existing.direction != direction:
        raise Conflict("This idempotency key was already used for another message on this ticket.", code="key_reused")
    return existing


def _mentioned_agent_ids(text: str) -> list[int]:
    names = set(_MENTION.findall(text))
    # Usernames may contain dots, but "Thanks @dora." ends a sentence: try the name without its trailing dots too.
    names |= {name.rstrip(".") for name in names}
    names.discard("")
    if not names:
        return []
    users = get_user_model().objects.filter(username__in=names, agent_profile__isnull=False, is_active=True)
    return sorted(users.values_list("pk", flat=True))


def _status_fields(status: str, now) -> dict:
    if status == Ticket.Status.SOLVED:
        return {"status": status, "solved_at": now}
    if status == Ticket.Status.CLOSED:
        return {"status": status}
    return {"status": status, "solved_at": None}
