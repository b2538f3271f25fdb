"""Email from providers' inbound webhooks (django-anymail): store the raw MIME on the channel it was sent to, and
return. Parsing runs in the inbound-event task, so the provider is answered fast and a message that anymail or we
cannot parse is still kept.

The raw bytes come from the provider's payload, not from anymail's parsed message, wherever the provider sends
raw MIME (Mailgun ``body-mime``, as a field or a file part, SendGrid "post raw" ``email``, SES SNS ``content``,
Postmark ``RawEmail``): anymail's accessors raise on real mail (group syntax, senders without an address), and a
re-serialised message is not what was sent. Only the providers' pre-parsed forms are stored as anymail rebuilds
them; as its MIME boundaries are random, such a message without a Message-ID is keyed on a digest of what the
provider posted (which a retry repeats), so a redelivery is recognised.
"""

import email.policy
import email.utils
import hashlib
import json
import logging
from base64 import b64decode
from binascii import Error as Base64Error
from collections.abc import Iterable
from email.parser import BytesHeaderParser, BytesParser
from urllib.parse import parse_qsl

from django.db.models import Q

from channels_app.models import Channel
from channels_app.providers.email.parsing import message_provider_id
from channels_app.services.inbound_receive import inbound_event_receive
from channels_app.services.webhook_nonces import content_digest

logger = logging.getLogger(__name__)

CONTENT_TYPE = "message/rfc822"
# Headers naming who a message was for, in the order they are trusted when the provider gives no envelope.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")
# A message has at least one of these with a value; anymail's rebuild of an empty payload has none (a Message-ID
# alone may be our own stand-in).
MESSAGE_HEADERS = ("From", "Sender", "To", "Cc", "Subject", "Date")
# Mailgun's signature fields: a retry may be signed anew, so they are no part of the message's identity.
MAILGUN_SIGNATURE_FIELDS = frozenset({"timestamp", "token", "signature"})


class NoChannelForRecipient(Exception):
    """No active email channel has any of the message's recipient addresses, and none is a catch-all. The webhook
    answers 503 so the provider keeps the message and retries it (it is taken once the address or a catch-all
    channel is configured, within the provider's retry window)."""


class NotAMessage(Exception):
    """The post can never become a message (malformed, empty, a tracking event, not MIME): refused with a 4xx and
    the reason, in the status that tells the provider not to retry it."""


def email_webhook_receive(sender, event, esp_name: str, **kwargs) -> None:
    """anymail's ``inbound`` signal receiver, called inside the provider's request: stores the raw MIME once per
    provider id on the recipient's channel (enqueuing its processing on commit). Raises ``NoChannelForRecipient``
    or ``NotAMessage``; the views turn them into 503 and the provider's 4xx."""
    raw, envelope_recipients = provider_message(esp_name=esp_name, event=event)
    if not is_email_message(raw):
        raise NotAMessage(f"The {esp_name} post holds no email message (no sender, recipient or subject header).")
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
            raw = uploaded_file_bytes(payload, "body-mime")
        recipients = _split(payload.POST.get("recipient", ""))
        if raw is not None:
            return raw, recipients
        fields = form_digest(payload, exclude=MAILGUN_SIGNATURE_FIELDS)
        return _rebuilt(event.message, esp_name=esp_name, digest=fields, recipients=recipients)
    if esp_name == "SendGrid":
        try:
            recipients = [str(address) for address in json.loads(payload.POST["envelope"])["to"]]
        except (KeyError, TypeError, ValueError):
            recipients = []
        raw = form_field_bytes(payload, "email")
        if raw is None:
            raw = uploaded_file_bytes(payload, "email")
        if raw is not None:
            return raw, recipients
        return _rebuilt(event.message, esp_name=esp_name, digest=form_digest(payload), recipients=recipients)
    if esp_name == "Postmark":
        recipients = _split(_text(payload.get("OriginalRecipient")))
        raw_email = payload.get("RawEmail")
        if isinstance(raw_email, str) and raw_email:
            return raw_email.encode("utf-8", "surrogatepass"), recipients
        message_id = _text(payload.get("MessageID"))
        stand_in = message_id or hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return _rebuilt(event.message, esp_name=esp_name, digest=stand_in, recipients=recipients)
    if esp_name == "Amazon SES":
        receipt = payload.get("receipt")
        recipients = receipt.get("recipients") if isinstance(receipt, dict) else None
        return ses_content_bytes(payload), [str(address) for address in recipients or []]
    envelope_recipient = getattr(event.message, "envelope_recipient", None)
    return _rebuilt(event.message, esp_name=esp_name, digest="", recipients=_split(envelope_recipient or ""))


def is_email_message(raw: bytes) -> bool:
    """Whether ``raw`` has at least one header naming a sender, recipient, subject or date (with a value)."""
    if not raw:
        return False
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    return any(str(value).strip() for name in MESSAGE_HEADERS for value in headers.get_all(name, []))


def ses_content_bytes(ses_event: dict) -> bytes:
    """The message of an SES receipt rule's SNS action (``content``, UTF-8 or Base64 as the action says)."""
    receipt = ses_event.get("receipt")
    action = receipt.get("action") if isinstance(receipt, dict) else None
    content = ses_event.get("content") or ""
    if not isinstance(content, str):
        raise NotAMessage("The SES notification's content is not a string.")
    if isinstance(action, dict) and action.get("encoding") == "BASE64":
        try:
            return b64decode(content.encode("ascii"), validate=True)
        except (UnicodeEncodeError, Base64Error) as exc:
            raise NotAMessage("The SES notification's content is not valid Base64.") from exc
    return content.encode("utf-8", "surrogatepass")


def form_field_bytes(request, name: str) -> bytes | None:
    """The bytes a form field was posted with. Django decodes fields as UTF-8 with replacement, which is exact for
    valid UTF-8; a field that needed replacing is read again from the body (the view kept ``request.body``)."""
    value = request.POST.get(name)
    if value is None:
        return None
    if "\ufffd" not in value:
        return value.encode("utf-8", "surrogatepass")
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        # latin-1 maps each percent-decoded byte to one character, so encoding back gives the bytes.
        fields = parse_qsl(request.body.decode("ascii", "replace"), keep_blank_values=True, encoding="latin-1")
        for key, field in fields:
            if key == name:
                return field.encode("latin-1")
    else:
        form = BytesParser(policy=email.policy.compat32).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + request.body
        )
        for part in form.get_payload() if form.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == name:
                return part.get_payload(decode=True)
    return value.encode("utf-8")


def uploaded_file_bytes(request, name: str) -> bytes | None:
    """The bytes of a form's file part (a client that posts the MIME as a file upload, not a field)."""
    upload = request.FILES.get(name)
    if upload is None:
        return None
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    return data


def form_digest(request, *, exclude: Iterable[str] = ()) -> str:
    """SHA-256 of a form post's fields (exact bytes) and files, in name order: what a retry of the post repeats."""
    excluded = set(exclude)
    parts = []
    for name in sorted(request.POST):
        if name in excluded:
            continue
        values = request.POST.getlist(name)
        if any("\ufffd" in value for value in values):
            exact = form_field_bytes(request, name)
            parts.extend((name, exact) for _ in values)
        else:
            parts.extend((name, value.encode("utf-8", "surrogatepass")) for value in values)
    for name in sorted(request.FILES):
        for upload in request.FILES.getlist(name):
            upload.seek(0)
            parts.append((f"file:{name}", upload.read()))
            upload.seek(0)
    return content_digest(parts)


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


def _rebuilt(message, *, esp_name: str, digest: str, recipients: list[str] | None = None) -> tuple[bytes, list[str]]:
    """anymail's message rebuilt from a provider's pre-parsed fields. Its MIME boundaries are random, so a message
    without a Message-ID gets one from ``digest`` (the provider's id, or a digest of what it posted), or
    redeliveries would not be recognised."""
    if recipients is None:
        recipients = _split(getattr(message, "envelope_recipient", None) or "") if message is not None else []
    if message is None:
        return b"", recipients
    try:
        if digest and not str(message.get("Message-ID") or "").strip():
            del message["Message-ID"]
            message["Message-ID"] = f"<{digest}@{esp_name.lower().replace(' ', '-')}.inbound.invalid>"
        return message.as_bytes(), recipients
    except (UnicodeError, LookupError, ValueError) as exc:
        raise NotAMessage(f"anymail could not rebuild this {esp_name} message ({type(exc).__name__}).") from exc


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _split(addresses: str) -> list[str]:
    return [address.strip() for address in addresses.split(",") if address.strip()]
