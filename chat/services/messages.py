"""A chat visitor's messages, files and read receipts.

A visitor's message takes the same path as every inbound message: the raw JSON is stored first as an
``InboundEvent`` (unique per channel and ``<visitor>:<client_id>``, so a resent message is one message), then
processed at once in the request by the chat adapter and ``message_ingest``, so the message exists when the answer
goes out. Should processing fail, the raw payload is kept and the periodic sweep retries it like any other event.
"""

import base64
import json
import logging

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from channels_app.models import InboundEvent
from channels_app.services.inbound_process import ProcessingShouldRetry, inbound_event_process
from channels_app.services.inbound_receive import inbound_event_receive
from chat.models import ChatVisitor
from chat.selectors import ticket_visitor_groups, visitor_message_get
from helpdesk.errors import DomainError, NotFound, PayloadTooLarge
from realtime.groups import group_visitor_id, ticket_group
from realtime.publish import realtime_publish
from tickets.models import Attachment, Message

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
# How stale a visitor's ``last_seen_at`` may get while they keep writing. It only orders a customer's visitors
# (which one a reply goes to); refreshing it on every message cost a transaction of its own on the widget's
# hottest path, before the answer.
SEEN_REFRESH_SECONDS = 60


class MessageNotReady(DomainError):
    """Stored, but taking it in failed for a reason that may pass: the sweep retries it, and the widget sending the
    same ``client_id`` again gets the message once it exists."""

    status_code = 503
    code = "try_again"


def chat_provider_id(*, visitor: ChatVisitor, client_id: str) -> str:
    return f"{visitor.public_id.hex}:{client_id}"


def chat_text_check(text: str) -> str:
    """The visitor's text as typed (never sanitised: it is stored and shown as text), within the limit."""
    limit = settings.HELPDESK["CHAT_MAX_MESSAGE_CHARS"]
    if len(text) > limit:
        raise DomainError(
            f"The message is {len(text)} characters long; the limit is {limit}. Shorten it or send it in parts.",
            code="message_too_long",
        )
    if not text.strip():
        raise DomainError("A message needs text.", code="empty_message")
    return text


def visitor_message_post(*, visitor: ChatVisitor, client_id: str, text: str) -> tuple[Message, bool]:
    """Store and take in the visitor's message. Returns ``(message, created)``; the same ``client_id`` again
    returns the first message."""
    chat_text_check(text)
    return _post(visitor=visitor, client_id=client_id, text=text, attachments=[])


def visitor_attachment_post(*, visitor: ChatVisitor, client_id: str, file: UploadedFile) -> tuple[Message, bool]:
    """A file from the visitor, as a message of its own. Over ``CHAT_MAX_UPLOAD_BYTES`` -> ``PayloadTooLarge``."""
    limit = settings.HELPDESK["CHAT_MAX_UPLOAD_BYTES"]
    if file.size is not None and file.size > limit:
        raise PayloadTooLarge(f"The file is {file.size} bytes; the limit is {limit} bytes.", code="file_too_large")
    content = file.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.", code="file_too_large")
    if not content:
        raise DomainError("The file is empty.", code="empty_file")
    attachment = {
        "filename": (file.name or "attachment")[:255],
        "content_type": (file.content_type or "application/octet-stream")[:100],
        "content_base64": base64.b64encode(content).decode("ascii"),
    }
    return _post(visitor=visitor, client_id=client_id, text="", attachments=[attachment])


def _post(*, visitor: ChatVisitor, client_id: str, text: str, attachments: list[dict]) -> tuple[Message, bool]:
    # Not one transaction on purpose: the raw event commits first, so a failure while processing loses nothing.
    provider_id = chat_provider_id(visitor=visitor, client_id=client_id)
    raw = json.dumps(
        {
            "visitor": visitor.public_id.hex,
            "visitor_id": visitor.pk,
            "client_id": client_id,
            "name": visitor.name,
            "email": visitor.email,
            "email_verified": visitor.is_verified,
            "text": text,
            "attachments": attachments,
        },
        separators=(",", ":"),
    ).encode()
    event, created = inbound_event_receive(
        channel=visitor.channel,
        provider_id=provider_id,
        raw=raw,
        content_type=CONTENT_TYPE,
        enqueue=False,
        is_attempted_now=True,
    )
    results = []
    if event.status not in (InboundEvent.Status.PROCESSED, InboundEvent.Status.QUARANTINED):
        try:
            results = inbound_event_process(event_id=event.pk, event=event, is_attempt_counted=created)
        except ProcessingShouldRetry as exc:
            raise MessageNotReady("The message was received but not yet delivered; send it again shortly.") from exc
    # The message just taken in, as ingested (with its ticket, customer and attachments); read only when an earlier
    # request took it in.
    message = results[0].message if results else _message_stored(visitor=visitor, provider_id=provider_id)
    if message is None:
        reason = InboundEvent.objects.filter(pk=event.pk).values_list("reason", flat=True).first() or ""
        logger.warning("chat.message_not_taken_in", extra={"event_id": event.pk, "visitor_id": visitor.pk})
        raise DomainError(f"The message could not be taken in: {reason}", code="message_rejected")
    _visitor_seen(visitor)
    return message, created


def _visitor_seen(visitor: ChatVisitor) -> None:
    """Writing means the visitor is back (``left_at`` cleared at once) and seen now (refreshed at most once a
    ``SEEN_REFRESH_SECONDS``)."""
    now = timezone.now()
    if (
        visitor.left_at is None
        and visitor.last_seen_at is not None
        and (now - visitor.last_seen_at).total_seconds() < SEEN_REFRESH_SECONDS
    ):
        return
    ChatVisitor.objects.filter(pk=visitor.pk).update(left_at=None, last_seen_at=now)
    visitor.left_at, visitor.last_seen_at = None, now


def _message_stored(*, visitor: ChatVisitor, provider_id: str) -> Message | None:
    return (
        Message.objects.filter(channel=visitor.channel, provider_id=provider_id)
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("pk")))
        .first()
    )


@transaction.atomic
def agent_read_mark(*, ticket_id: int, customer_id: int, up_to: int) -> bool:
    """An agent has read the ticket's conversation up to message ``up_to`` (a message of that ticket, else
    ``NotFound``): the chat visitors whose conversation it is see "Seen". Only moves forward; tells the visitors and
    the ticket's other agents after commit. The caller has checked that the agent may see the ticket."""
    if not Message.objects.filter(pk=up_to, ticket_id=ticket_id).exclude(direction=Message.Direction.NOTE).exists():
        raise NotFound("No such message on this ticket.")
    groups = ticket_visitor_groups(ticket_id=ticket_id, customer_id=customer_id)
    moved = ChatVisitor.objects.filter(
        Q(agent_read_up_to__isnull=True) | Q(agent_read_up_to__lt=up_to),
        customer_id=customer_id,
        public_id__in=[group_visitor_id(group) for group in groups],
    ).update(agent_read_up_to=up_to)
    if moved:
        realtime_publish(
            groups=[ticket_group(ticket_id), *groups],
            event={"type": "read", "ticket_id": ticket_id, "who": "agent", "up_to": up_to},
        )
    return bool(moved)


def visitor_read_mark(*, visitor: ChatVisitor, up_to: int) -> bool:
    """The visitor has seen their conversation up to message ``up_to``. Only moves forward (a late receipt from
    another tab changes nothing); tells the ticket's agents after commit. Returns whether it moved."""
    message = visitor_message_get(visitor=visitor, message_id=up_to)
    moved = ChatVisitor.objects.filter(
        Q(visitor_read_up_to__isnull=True) | Q(visitor_read_up_to__lt=up_to), pk=visitor.pk
    ).update(visitor_read_up_to=up_to, last_seen_at=timezone.now())
    if moved:
        visitor.visitor_read_up_to = up_to
        realtime_publish(
            groups=[ticket_group(message.ticket_id)],
            event={"type": "read", "ticket_id": message.ticket_id, "who": "visitor", "up_to": up_to},
        )
    return bool(moved)
