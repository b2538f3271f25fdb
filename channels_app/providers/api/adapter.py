"""The API channel: the company's systems post messages in the neutral JSON shape, and receive replies at a
callback URL they configure (signed with HMAC-SHA256), or read them over the REST API.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

import httpx
from django.conf import settings
from django.utils.dateparse import parse_datetime

from channels_app.adapters.base import (
    FORMAT_EMAIL,
    REACHABLE,
    AdapterDefaults,
    PayloadError,
    PermanentDeliveryError,
    Reachability,
    RetryableDeliveryError,
)
from channels_app.adapters.registry import register
from channels_app.json_payloads import json_object_load, json_string
from channels_app.models import Channel
from channels_app.types import (
    DeliveryReceipt,
    InboundAttachment,
    InboundIdentity,
    InboundMessage,
    OutboundMessage,
)
from customers.identities import normalise_identity

SIGNATURE_HEADER = "X-Helpdesk-Signature"
_SENDER_KEYS = (
    ("external_id", "external"),
    ("email", "email"),
    ("phone", "phone"),
    ("chat_visitor", "chat_visitor"),
)


def sign_callback(*, secret: str, timestamp: str, body: bytes) -> str:
    """``t=<unix>,v1=<hex>`` over ``"<unix>.<body>"``: the receiver recomputes it and rejects old timestamps."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class ApiChannelAdapter(AdapterDefaults):
    kind = Channel.Kind.API
    provider = "api"
    recipient_identity_kinds = ("external", "email", "phone", "chat_visitor")
    message_format = FORMAT_EMAIL
    supports_list_unsubscribe = False

    def verify(self, *, channel, request) -> None:
        # Authentication is the bearer token checked by the API view (scoped to this channel).
        return None

    def parse(self, *, channel, payload, content_type: str = "") -> list[InboundMessage]:
        data = json_object_load(payload)
        return [_message_from(data, phone_region=(channel.settings or {}).get("phone_region"))]

    def send(self, *, channel, message: OutboundMessage) -> DeliveryReceipt:
        url = (channel.settings or {}).get("callback_url", "")
        if not url:
            # No callback: the company's systems read replies over the REST API, so it is ready now.
            return DeliveryReceipt(provider_message_id="")
        body = json.dumps(
            {
                "type": "message.outbound",
                "message_id": message.message_id,
                "ticket_id": message.ticket_id,
                "recipient": message.recipient,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "author_name": message.author_name,
            },
            separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"message-{message.message_id}"}
        secret = (channel.secrets or {}).get("callback_secret", "")
        if secret:
            headers[SIGNATURE_HEADER] = sign_callback(secret=secret, timestamp=str(int(time.time())), body=body)
        timeout = settings.HELPDESK["OUTBOUND_HTTP_TIMEOUT_SECONDS"]
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(f"callback unreachable: {type(exc).__name__}", code="network") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryableDeliveryError(f"callback answered {response.status_code}", code=str(response.status_code))
        if response.status_code >= 300:
            raise PermanentDeliveryError(
                f"callback refused the message with {response.status_code}", code=str(response.status_code)
            )
        return DeliveryReceipt(provider_message_id=response.headers.get("X-Message-Id", "")[:255])

    def reachability(self, *, channel, identity, purpose: str) -> Reachability:
        # The integration behind the API channel decides what reaches its users.
        return REACHABLE


def _message_from(data: Mapping, *, phone_region: str | None) -> InboundMessage:
    limits = settings.HELPDESK
    provider_id = json_string(data, "id", required=True, max_length=255).strip()
    sender = data.get("sender")
    if not isinstance(sender, Mapping):
        raise PayloadError("'sender' must be an object with at least one of external_id, email, phone")
    identities = []
    for key, kind in _SENDER_KEYS:
        value = json_string(sender, key, max_length=320).strip()
        if value:
            try:
                normalise_identity(kind, value, phone_region=phone_region)
            except ValueError as exc:
                raise PayloadError(f"sender.{key}: {exc}") from exc
            # The company's own id for its user is authoritative; an address is only as good as its source.
            verified = kind == "external" or bool(sender.get("verified", False))
            identities.append(InboundIdentity(kind=kind, value=value, is_verified=verified))
    if not identities:
        raise PayloadError("'sender' needs at least one of external_id, email, phone, chat_visitor")
    text = json_string(data, "text", max_length=limits["MAX_MESSAGE_TEXT_CHARS"])
    html = json_string(data, "html", max_length=limits["MAX_MESSAGE_TEXT_CHARS"] * 2)
    attachments = _attachments(data.get("attachments") or [])
    if not text.strip() and not html.strip() and not attachments:
        raise PayloadError("a message needs 'text', 'html' or attachments")
    sent_at = None
    if data.get("sent_at"):
        sent_at = parse_datetime(json_string(data, "sent_at"))
        if sent_at is None:
            raise PayloadError("'sent_at' must be an ISO 8601 date-time")
    ticket_id = data.get("ticket_id")
    if ticket_id is not None and (isinstance(ticket_id, bool) or not isinstance(ticket_id, int) or ticket_id < 1):
        raise PayloadError("'ticket_id' must be a positive integer")
    in_reply_to = data.get("in_reply_to") or []
    if isinstance(in_reply_to, str):
        in_reply_to = [in_reply_to]
    if not isinstance(in_reply_to, list) or not all(isinstance(item, str) for item in in_reply_to):
        raise PayloadError("'in_reply_to' must be a list of message ids")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise PayloadError("'metadata' must be an object")
    return InboundMessage(
        provider_id=provider_id,
        sender=identities[0],
        extra_identities=tuple(identities[1:]),
        sender_name=json_string(sender, "name", max_length=200),
        subject=json_string(data, "subject", max_length=500),
        text=text,
        html=html,
        sent_at=sent_at,
        attachments=attachments,
        ticket_id=ticket_id,
        in_reply_to=tuple(item[:255] for item in in_reply_to[:50]),
        metadata=dict(metadata),
    )


def _attachments(items) -> tuple[InboundAttachment, ...]:
    if not isinstance(items, list):
        raise PayloadError("'attachments' must be a list")
    limits = settings.HELPDESK
    result, total = [], 0
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise PayloadError(f"attachments[{index}] must be an object")
        filename = json_string(item, "filename", required=True, max_length=255)
        content_type = json_string(item, "content_type", max_length=100) or "application/octet-stream"
        encoded = json_string(item, "content_base64", required=True)
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(f"attachments[{index}].content_base64 is not valid base64") from exc
        if len(content) > limits["MAX_ATTACHMENT_BYTES"]:
            raise PayloadError(
                f"attachments[{index}] is {len(content)} bytes; the limit is {limits['MAX_ATTACHMENT_BYTES']}"
            )
        total += len(content)
        if total > limits["MAX_ATTACHMENTS_TOTAL_BYTES"]:
            raise PayloadError(f"attachments total more than {limits['MAX_ATTACHMENTS_TOTAL_BYTES']} bytes")
        result.append(InboundAttachment(filename=filename, content_type=content_type, content=content))
    return tuple(result)


register(ApiChannelAdapter, default=True)
