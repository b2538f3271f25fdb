"""The chat widget channel: visitors' messages arrive through the widget's REST API (``chat.api``), which stores
them as raw JSON events; this adapter reads those back as neutral messages. Replies need no provider: the message
is in the database and pushed to the visitor's websocket, and the widget catches up over REST, so a send is
delivered at once.
"""

import base64
import binascii
from collections.abc import Mapping

from django.conf import settings
from django.db.models import F

from channels_app.adapters.base import (
    FORMAT_CHAT,
    PURPOSE_REPLY,
    REACHABLE,
    AdapterDefaults,
    PayloadError,
    Reachability,
)
from channels_app.adapters.registry import has_adapter, register
from channels_app.json_payloads import json_object_load, json_string
from channels_app.models import Channel
from channels_app.types import DeliveryReceipt, InboundAttachment, InboundIdentity, InboundMessage, OutboundMessage
from chat.models import ChatVisitor
from customers.models import CustomerIdentity
from realtime.presence import visitor_is_online


class ChatWidgetAdapter(AdapterDefaults):
    kind = Channel.Kind.CHAT
    provider = "widget"
    recipient_identity_kinds = ("chat_visitor",)
    message_format = FORMAT_CHAT
    supports_list_unsubscribe = False

    def verify(self, *, channel, request) -> None:
        # The widget API checks the Origin and the signed visitor token itself (chat.api.views).
        return None

    def parse(self, *, channel, payload, content_type: str = "") -> list[InboundMessage]:
        data = json_object_load(payload)
        visitor = json_string(data, "visitor", required=True, max_length=32)
        client_id = json_string(data, "client_id", required=True, max_length=200)
        text = json_string(data, "text", max_length=settings.HELPDESK["CHAT_MAX_MESSAGE_CHARS"])
        attachments = _attachments(data.get("attachments") or [])
        if not text.strip() and not attachments:
            raise PayloadError("a chat message needs text or a file")
        visitor_id = data.get("visitor_id")
        if isinstance(visitor_id, bool) or not isinstance(visitor_id, int):
            raise PayloadError("'visitor_id' must be an integer")
        extra = ()
        email = json_string(data, "email", max_length=320).strip()
        if email:
            # Attached only when no other customer owns it (message_ingest's rule for extra identities); otherwise
            # the message notes it was left out. Verified only when the host site vouched for the visitor.
            extra = (InboundIdentity(kind="email", value=email, is_verified=data.get("email_verified") is True),)
        return [
            InboundMessage(
                provider_id=f"{visitor}:{client_id}",
                sender=InboundIdentity(kind="chat_visitor", value=visitor),
                sender_name=json_string(data, "name", max_length=200),
                text=text,
                attachments=attachments,
                extra_identities=extra,
                metadata={"chat_visitor": visitor_id, "client_id": client_id},
            )
        ]

    def send(self, *, channel, message: OutboundMessage) -> DeliveryReceipt:
        return DeliveryReceipt(provider_message_id=f"chat-{message.message_id}", is_delivered=True)

    def reachability(self, *, channel, identity, purpose: str) -> Reachability:
        # A reply waits in the conversation for the visitor to come back (the widget catches up); a message the
        # desk starts itself is only worth sending to a visitor who is looking at the widget now.
        if purpose == PURPOSE_REPLY:
            return REACHABLE
        visitor = (
            ChatVisitor.objects.filter(channel=channel, identity=identity)
            .order_by("-last_seen_at", "-pk")
            .only("public_id", "left_at")
            .first()
        )
        return _visitor_reachability(visitor)

    def reachability_batch(self, *, channels, customer_id: int, identities, purpose: str) -> dict[int, Reachability]:
        if purpose == PURPOSE_REPLY:
            return {channel.pk: REACHABLE for channel in channels}
        # The customer's latest visitor on each widget decides (one query, then presence).
        latest: dict[int, ChatVisitor] = {}
        visitors = ChatVisitor.objects.filter(customer_id=customer_id, channel__in=list(channels)).order_by(
            "channel_id", "-last_seen_at", "-pk"
        )
        for visitor in visitors.only("pk", "channel_id", "public_id", "left_at")[:50]:
            latest.setdefault(visitor.channel_id, visitor)
        return {channel.pk: _visitor_reachability(latest.get(channel.pk)) for channel in channels}

    def continuation(self, *, channel, customer_id: int) -> Channel | None:
        """The email channel an agent's reply should take instead of the chat ``channel``: when the customer's
        latest visitor on it has left (or is not connected), the customer has an email address, and the chat
        channel names an active email channel (``email_channel_id``). None means: reply on the chat."""
        email_channel_id = (channel.settings or {}).get("email_channel_id")
        if not email_channel_id:
            return None
        visitor = (
            ChatVisitor.objects.filter(channel=channel, customer_id=customer_id)
            .order_by(F("last_seen_at").desc(nulls_last=True), "-pk")
            .only("pk", "public_id", "left_at")
            .first()
        )
        if visitor is None:
            return None
        if visitor.left_at is None and visitor_is_online(visitor_public_id=visitor.public_id):
            return None
        if not CustomerIdentity.objects.filter(customer_id=customer_id, kind=CustomerIdentity.Kind.EMAIL).exists():
            return None
        email_channel = Channel.objects.filter(pk=email_channel_id, kind=Channel.Kind.EMAIL, is_active=True).first()
        if email_channel is None or not has_adapter(email_channel):
            return None
        return email_channel


def _visitor_reachability(visitor: ChatVisitor | None) -> Reachability:
    if visitor is not None and visitor.left_at is None and visitor_is_online(visitor_public_id=visitor.public_id):
        return REACHABLE
    return Reachability(
        is_reachable=False, reason="visitor_offline", detail="The customer is not on the chat widget now."
    )


def _attachments(items) -> tuple[InboundAttachment, ...]:
    if not isinstance(items, list):
        raise PayloadError("'attachments' must be a list")
    limit = settings.HELPDESK["CHAT_MAX_UPLOAD_BYTES"]
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise PayloadError(f"attachments[{index}] must be an object")
        try:
            content = base64.b64decode(
                json_string(item, "content_base64", required=True, max_length=limit * 2), validate=True
            )
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(f"attachments[{index}].content_base64 is not valid base64") from exc
        if len(content) > limit:
            raise PayloadError(f"attachments[{index}] is {len(content)} bytes; the limit is {limit}")
        result.append(
            InboundAttachment(
                filename=json_string(item, "filename", required=True, max_length=255),
                content_type=json_string(item, "content_type", max_length=100) or "application/octet-stream",
                content=content,
            )
        )
    return tuple(result)


register(ChatWidgetAdapter, default=True)
