"""Email from providers' inbound webhooks (django-anymail): store the raw MIME on the channel it was sent to, and
return. Parsing runs in the inbound-event task, so the provider is answered fast and a message that anymail or we
cannot parse is still kept.

The raw bytes come from the provider's payload, not from anymail's parsed message, wherever the provider sends
raw MIME (Mailgun ``body-mime``, SendGrid "post raw" ``email``, SES SNS ``content``, Postmark ``RawEmail``): anymail's
accessors raise on real mail (group syntax, senders without an address), and a re-serialised message is not what
was sent. Only the providers' pre-parsed forms are stored as anymail reconstructs them.
"""

import email.policy
import email.utils
import json
import logging
from base64 import b64decode
from collections.abc import Iterable
from email.parser import BytesHeaderParser, BytesParser
from urllib.parse import parse_qsl

from django.db.models import Q

from channels_app.email.parsing import message_provider_id
from channels_app.models import Channel
from channels_app.services.inbound_receive import inbound_event_receive

logger = logging.getLogger(__name__)

CONTENT_TYPE = "message/rfc822"
# Headers naming who a message was for, in the order they are trusted when the provider gives no envelope.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


class NoChannelForRecipient(Exception):
    """No active email channel has any of the message's recipient addresses, and none is a catch-all. The webhook
    answers 503 so the provider keeps the message and retries it (once the address is configured)."""


class NoRawMessage(Exception):
    """The provider's payload holds no message (nothing to store): answered 400."""


def email_webhook_receive(sender, event, esp_name: str, **kwargs) -> None:
    """anymail's ``inbound`` signal receiver, called inside the provider's request: stores the raw MIME once per
    Message-ID on the recipient's channel (enqueuing its processing on commit). Raises ``NoChannelForRecipient``
    or ``NoRawMessage``; the views turn them into 503 and 400."""
    raw, envelope_recipients = provider_message(esp_name=esp_name, event=event)
    if not raw:
        raise NoRawMessage(f"The {esp_name} payload holds no message.")
    channel = email_channel_for_recipients(recipients=[*envelope_recipients, *header_recipients(raw)])
    if channel is None:
        logger.error("channels_app.email_webhook_no_channel", extra={"provider": esp_name})
        raise NoChannelForRecipient(
            "No email channel has this message's recipient address and no channel is a catch-all; "
            "the message was not stored."
        )
    inbound_event, created = inbound_event_receive(
        channel=channel, provider_id=message_provider_id(raw), raw=raw, content_type=CONTENT_TYPE
    )
    logger.info(
        "channels_app.email_webhook_received",
        extra={"provider": esp_name, "event_id": inbound_event.pk, "channel_id": channel.pk, "is_new": created},
    )


def provider_message(*, esp_name: str, event) -> tuple[bytes, list[str]]:
    """The raw MIME bytes a provider delivered, and the envelope recipients it reported."""
    payload = event.esp_event
    if esp_name == "Mailgun":
        raw = form_field_bytes(payload, "body-mime")
        if raw is None:
            raw = _reconstructed(event.message)
        return raw, _split(payload.POST.get("recipient", ""))
    if esp_name == "SendGrid":
        raw = form_field_bytes(payload, "email")
        if raw is None:
            raw = _reconstructed(event.message)
        try:
            envelope_recipients = list(json.loads(payload.POST["envelope"])["to"])
        except (KeyError, TypeError, ValueError):
            envelope_recipients = []
        return raw, envelope_recipients
    if esp_name == "Postmark":
        if payload.get("RawEmail"):
            raw = payload["RawEmail"].encode("utf-8")
        else:
            raw = _reconstructed(event.message, stand_in_id=payload.get("MessageID"))
        return raw, _split(payload.get("OriginalRecipient") or "")
    if esp_name == "Amazon SES":
        return ses_content_bytes(payload), list(payload.get("receipt", {}).get("recipients") or [])
    envelope_recipient = getattr(event.message, "envelope_recipient", None)
    return _reconstructed(event.message), _split(envelope_recipient or "")


def ses_content_bytes(ses_event: dict) -> bytes:
    """The message of an SES receipt rule's SNS action (``content``, UTF-8 or Base64 as the action says)."""
    action = ses_event.get("receipt", {}).get("action", {})
    content = ses_event.get("content") or ""
    if action.get("encoding") == "BASE64":
        return b64decode(content.encode("ascii"))
    return content.encode("utf-8")


def form_field_bytes(request, name: str) -> bytes | None:
    """The bytes a form field was posted with. Django decodes fields as UTF-8 with replacement, which is exact for
    valid UTF-8; a field that needed replacing is read again from the body (the view kept ``request.body``)."""
    value = request.POST.get(name)
    if value is None:
        return None
    if "\ufffd" not in value:
        return value.encode("utf-8")
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        # latin-1 maps each percent-decoded byte to one character, so encoding back gives the bytes.
        fields = parse_qsl(request.body.decode("ascii", "replace"), keep_blank_values=True, encoding="latin-1")
        for key, field in fields:
            if key == name:
                return field.encode("latin-1")
    else:
        form = BytesParser(policy=email.policy.compat32).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.body
        )
        for part in form.get_payload() if form.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == name:
                return part.get_payload(decode=True)
    return value.encode("utf-8")


def header_recipients(raw: bytes) -> list[str]:
    """Addresses in the recipient headers, never raising on malformed ones (group syntax, bad encodings)."""
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    values = []
    for name in RECIPIENT_HEADERS:
        values.extend(str(value) for value in headers.get_all(name, []))
    try:
        return [address for _, address in email.utils.getaddresses(values) if "@" in address]
    except Exception:
        # A header we cannot read names no channel; the envelope recipient may still.
        return []


def normalized_address(address: str) -> str:
    """Lower-cased, with a plus-tag dropped: ``Support+t12-ab@Desk.example`` is ``support@desk.example``."""
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    if not at:
        return ""
    return f"{local.split('+', 1)[0]}@{domain}"


def email_channel_for_recipients(*, recipients: Iterable[str]) -> Channel | None:
    """The active email channel whose address is the first matching recipient (case-insensitive; a plus-address
    also matches its base address), else the catch-all channel (``settings.catch_all``, the lowest id if several),
    else None."""
    wanted = []
    for recipient in recipients:
        exact = recipient.strip().strip("<>").lower()
        for address in (exact, normalized_address(exact)):
            if "@" in address and address not in wanted:
                wanted.append(address)
    channels = Channel.objects.filter(kind=Channel.Kind.EMAIL, is_active=True)
    if wanted:
        matches = Q()
        for address in wanted:
            matches |= Q(address__iexact=address)
        by_address = {channel.address.lower(): channel for channel in channels.filter(matches)}
        for address in wanted:
            if address in by_address:
                return by_address[address]
    return channels.filter(settings__catch_all=True).order_by("pk").first()


def _reconstructed(message, *, stand_in_id: str | None = None) -> bytes:
    """anymail's message rebuilt from a provider's pre-parsed fields. Its MIME boundaries are random, so a message
    without a Message-ID gets one from the provider's id, or redeliveries would not be recognised."""
    if message is None:
        return b""
    if stand_in_id and "Message-ID" not in message:
        message["Message-ID"] = f"<{stand_in_id}@inbound.provider.invalid>"
    return message.as_bytes()


def _split(addresses: str) -> list[str]:
    return [address.strip() for address in addresses.split(",") if address.strip()]
