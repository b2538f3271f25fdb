"""Twilio's inbound message webhook form -> the neutral ``InboundMessage``.

Twilio posts ``application/x-www-form-urlencoded`` UTF-8 with ``MessageSid``, ``From``, ``To``, ``Body``,
``NumSegments``, ``NumMedia`` and ``MediaUrl{i}``/``MediaContentType{i}``, plus geographic and account fields, and
adds fields without notice: unknown ones are ignored, never refused. The sender stays as Twilio wrote it; the core
normalises it to E.164 with the channel's ``phone_region`` (``message_ingest``), this module only checks that it is
a phone number at all.
"""

from collections.abc import Mapping
from urllib.parse import parse_qsl

from django.conf import settings

from channels_app.adapters.base import PayloadError
from channels_app.models import Channel
from channels_app.sms.keywords import sms_keyword_kind
from channels_app.types import InboundIdentity, InboundMessage
from customers.identities import is_phone_shaped, normalise_phone
from helpdesk.text import ascii_int, storable, text_within_limit

# Twilio documents up to 10 media per MMS; more would be a hostile payload.
MAX_MEDIA = 10
# Far above any real webhook (Twilio's has a few dozen fields); a guard against a form bomb.
MAX_FIELDS = 500

# Fields kept in the message's metadata for agents and later features; the rest of the payload stays in the raw
# event. AddOns is left out on purpose: it can be large JSON from third parties.
TWILIO_METADATA_FIELDS = (
    "AccountSid",
    "MessagingServiceSid",
    "ApiVersion",
    "SmsStatus",
    "OptOutType",
    "FromCountry",
    "FromState",
    "FromCity",
    "FromZip",
    "ToCountry",
    "ToState",
    "ToCity",
    "ToZip",
)


def twilio_form_fields(payload: bytes | Mapping) -> dict[str, str]:
    """The webhook's fields (the last value of a repeated one), made storable (``helpdesk.text``: a NUL in a Body
    is removed and a lone surrogate replaced, not a failed event). ``PayloadError`` when it is not UTF-8 form
    data."""
    if isinstance(payload, Mapping):
        fields = {}
        for name, value in payload.items():
            if isinstance(value, list | tuple):
                value = value[-1] if value else ""
            fields[str(name)] = "" if value is None else str(value)
        return storable(fields)
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise PayloadError(f"unsupported payload type {type(payload).__name__}")
    try:
        # "surrogatepass": a lone surrogate encoded as UTF-8 (what an emoji split between two segments can leave) is
        # read, then replaced by storable(); any other byte that is not UTF-8 is not a form Twilio sends.
        text = bytes(payload).decode("utf-8", "surrogatepass")
        pairs = parse_qsl(text, keep_blank_values=True, errors="surrogatepass", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError as exc:
        raise PayloadError("the form is not valid UTF-8") from exc
    except ValueError as exc:
        raise PayloadError(f"the form cannot be parsed: {exc}") from exc
    return storable(dict(pairs))


def parse_twilio_form(*, channel: Channel, payload: bytes | Mapping) -> InboundMessage:
    """One inbound SMS/MMS. ``PayloadError`` with the reason when it cannot become a customer's message."""
    fields = twilio_form_fields(payload)
    provider_id = fields.get("MessageSid") or fields.get("SmsSid") or ""
    if not provider_id.strip():
        raise PayloadError("MessageSid is missing")
    sender = (fields.get("From") or "").strip()
    if not sender:
        raise PayloadError("From is missing")
    if "Body" not in fields:
        raise PayloadError("Body is missing")
    _check_phone(sender, channel)
    # Twilio retries a refused webhook, so a body over the limit every channel has is kept, shortened with a note
    # that says so (the whole body stays in the raw event).
    text, is_truncated = text_within_limit(fields["Body"], limit=settings.HELPDESK["MAX_MESSAGE_TEXT_CHARS"])
    metadata = {
        "to": fields.get("To", ""),
        "num_segments": ascii_int(fields.get("NumSegments")),
        "media": _media(fields),
        "twilio": {name: fields[name] for name in TWILIO_METADATA_FIELDS if fields.get(name)},
    }
    if is_truncated:
        metadata["is_truncated"] = True
    keyword = sms_keyword_kind(text, provider_type=fields.get("OptOutType", ""))
    if keyword:
        metadata["sms_keyword"] = keyword
    return InboundMessage(
        provider_id=provider_id.strip(),
        sender=InboundIdentity(kind="phone", value=sender),
        text=text,
        metadata=metadata,
    )


def _check_phone(value: str, channel: Channel) -> None:
    if not is_phone_shaped(value):
        raise PayloadError(f"From is not a phone number (got a {_describe(value)})")
    try:
        normalise_phone(value, region=(channel.settings or {}).get("phone_region"))
    except ValueError as exc:
        raise PayloadError(f"From is not a usable phone number: {exc}") from exc


def _describe(value: str) -> str:
    # The reason is stored and shown to admins: name the kind of sender, not the customer's address.
    scheme, separator, _ = value.partition(":")
    if separator and scheme.isalpha():
        return f"{scheme.lower()[:20]}: address"
    return "alphanumeric sender id" if any(character.isalpha() for character in value) else "malformed number"


def _media(fields: dict[str, str]) -> list[dict[str, str]]:
    count = min(ascii_int(fields.get("NumMedia")) or 0, MAX_MEDIA)
    media = []
    for index in range(count):
        url = (fields.get(f"MediaUrl{index}") or "").strip()
        if url:
            media.append({"url": url, "content_type": (fields.get(f"MediaContentType{index}") or "").strip()})
    return media
