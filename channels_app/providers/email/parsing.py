"""Turning one raw RFC 5322 message into an ``InboundMessage``.

Real mail is messy (group syntax, senders without an address, unknown charsets, broken MIME), so every header
access is guarded and falls back to the raw header string; a message that still cannot become a customer's
message raises ``PayloadError`` with the reason, to be quarantined with its raw bytes kept.
"""

import email.header
import email.policy
import email.utils
import functools
import hashlib
import re
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser

from django.conf import settings

from channels_app.adapters.base import PayloadError
from channels_app.providers.email.automatic import automatic_reason
from channels_app.providers.email.bounce_parts import plain_header
from channels_app.providers.email.bounces import bounce_detect
from channels_app.providers.email.html_quotes import html_reply
from channels_app.providers.email.quotes import reply_text
from channels_app.types import InboundAttachment, InboundIdentity, InboundMessage
from helpdesk.text import text_within_limit

DEFAULT_MAX_EMAIL_BYTES = 40 * 1024 * 1024
MAX_REFERENCES = 50
PROVIDER_ID_MAX_LENGTH = 255

_MESSAGE_ID_TOKEN = re.compile(r"<[^<>\s]+>")


class _RepeatParsingPolicy(email.policy.EmailPolicy):
    """``email.policy.default``, except that a header value already parsed is not parsed again.

    The standard policy parses a header afresh on every access, and a message's Content-Type alone is read a dozen
    times while its parts are walked (by us, by bounce detection, by the stdlib itself): a third of the time spent
    parsing an email. Parsed headers are immutable values of their source text, so they are shared.
    """

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name") or len(value) > _MAX_CACHED_HEADER_CHARS:
            return super().header_fetch_parse(name, value)
        return _header_parsed(name, value)


_MAX_CACHED_HEADER_CHARS = 2000


@functools.lru_cache(maxsize=4096)
def _header_parsed(name: str, value: str):
    return email.policy.default.header_fetch_parse(name, value)


POLICY = _RepeatParsingPolicy()


def message_provider_id(raw: bytes) -> str:
    """The Message-ID as sent (angle brackets kept), or a deterministic stand-in derived from the bytes, so a
    redelivered file is recognised as the same message."""
    raw = bytes(raw)
    # Only the header block: the parser splits everything it is given into lines, ~8x the size of a large body.
    ends = [index for index in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if index >= 0]
    headers = raw[: min(ends) + 1] if ends else raw
    message = BytesParser(policy=POLICY).parsebytes(headers, headersonly=True)
    return _provider_id(message, raw)


def parse_email(raw: bytes, *, channel) -> InboundMessage:
    """Parse ``raw`` into the neutral inbound shape. Raises ``PayloadError`` (quarantine) for what cannot become a
    customer's message: too large, not an email, no sender address. Never raises anything else for bad input."""
    raw = bytes(raw)
    limit = settings.HELPDESK.get("MAX_EMAIL_BYTES", DEFAULT_MAX_EMAIL_BYTES)
    if len(raw) > limit:
        raise PayloadError(f"message is {len(raw)} bytes; the limit is {limit}")
    try:
        message = BytesParser(policy=POLICY).parsebytes(raw)
    except RecursionError as exc:
        # The stdlib parser recurses once per nested multipart and gives up near a thousand levels.
        raise PayloadError("MIME parts are nested too deeply to parse") from exc
    if not list(message.raw_items()):
        raise PayloadError("not an email message")

    senders = _addresses(message, "From")
    sender = next(((name, address) for name, address in senders if "@" in address), None)
    if sender is None:
        raise PayloadError("no sender address")
    sender_name, sender_address = sender

    body = _Body()
    _collect(message, body)
    full_text = "\n\n".join(part for part in body.texts if part.strip())
    html = body.htmls[0] if body.htmls else ""
    text = reply_text(full_text) if full_text else ""
    if not full_text and html:
        # HTML-only mail: the quote is found in the markup (Gmail, Outlook, Apple Mail); html stays whole.
        html_parts = html_reply(html)
        full_text, text = html_parts.full_text, html_parts.text

    limits = settings.HELPDESK
    metadata = {
        "message_id": _raw_header(message, "Message-ID").strip(),
        "to": [address.lower() for _, address in _addresses(message, "To") if address],
        "cc": [address.lower() for _, address in _addresses(message, "Cc") if address],
        "recipients": _delivery_recipients(message),
        "auto_submitted": _raw_header(message, "Auto-Submitted").strip(),
        "bounce": (bounce := _bounce(message)),
        "is_bounce": bounce is not None,
        "automatic_reason": (automatic := _automatic_reason(message, sender_address, is_bounce=bounce is not None)),
        "is_automatic": bool(automatic),
    }
    if text != full_text:
        metadata["full_text"] = full_text
    if body.skipped:
        metadata["attachments_skipped"] = body.skipped
    max_chars = limits["MAX_MESSAGE_TEXT_CHARS"]
    # Every channel's limit; the text says where it was cut (the whole message stays in the raw event).
    text, is_text_truncated = text_within_limit(text, limit=max_chars)
    if is_text_truncated or len(html) > max_chars * 2:
        metadata["is_truncated"] = True
        html = html[: max_chars * 2]

    return InboundMessage(
        provider_id=_provider_id(message, raw),
        sender=InboundIdentity(kind="email", value=sender_address, is_verified=False),
        sender_name=sender_name[:200],
        subject=_subject(message),
        text=text,
        html=html,
        sent_at=_sent_at(message),
        attachments=tuple(body.attachments),
        in_reply_to=_references(message),
        metadata=metadata,
    )


# Headers


def _raw_header(message: Message, name: str) -> str:
    """The header's value as sent (folding removed), without parsing it; "" when absent."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return " ".join(str(value).split())
    return ""


def _decoded_header(message: Message, name: str) -> str:
    """An unstructured header (Subject), decoded, unfolded, whitespace runs as one space; "" when absent."""
    plain = plain_header(message, name)
    if plain is not None:
        return plain
    try:
        value = message.get(name)
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:
        raw = _raw_header(message, name)
        try:
            return " ".join(str(email.header.make_header(email.header.decode_header(raw))).split())
        except Exception:
            return raw


def _addresses(message: Message, name: str) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs, groups flattened; falls back to ``getaddresses`` on the raw string when
    the header cannot be parsed."""
    try:
        header = message.get(name)
        if header is None:
            return []
        return [(address.display_name or "", address.addr_spec or "") for address in header.addresses]
    except Exception:
        raw = _raw_header(message, name)
        try:
            pairs = email.utils.getaddresses([raw])
        except Exception:
            return []
        return [(_decode_words(display), address) for display, address in pairs]


def _decode_words(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:
        return value


def _provider_id(message: Message, raw: bytes) -> str:
    message_id = _raw_header(message, "Message-ID").strip()
    if not message_id:
        message_id = f"<{hashlib.sha256(raw).hexdigest()}@no-message-id.invalid>"
    return message_id[:PROVIDER_ID_MAX_LENGTH]


def _subject(message: Message) -> str:
    return _decoded_header(message, "Subject").strip()[:500]


def _sent_at(message: Message) -> datetime | None:
    raw = _raw_header(message, "Date")
    if not raw:
        return None
    try:
        value = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _references(message: Message) -> tuple[str, ...]:
    """Ids this message answers, newest first: In-Reply-To, then References from its last id backwards."""
    ids = _MESSAGE_ID_TOKEN.findall(_raw_header(message, "In-Reply-To"))
    ids += list(reversed(_MESSAGE_ID_TOKEN.findall(_raw_header(message, "References"))))
    unique = []
    for item in ids:
        item = item[:PROVIDER_ID_MAX_LENGTH]
        if item not in unique:
            unique.append(item)
    return tuple(unique[:MAX_REFERENCES])


def _automatic_reason(message: Message, sender_address: str, *, is_bounce: bool) -> str:
    """Why no automatic answer may go to this message (RFC 3834), or "" (``channels_app.providers.email.automatic``)."""
    return automatic_reason(message, sender_address=sender_address, is_bounce=is_bounce)


def _bounce(message: Message) -> dict | None:
    """What a bounce says (``channels_app.providers.email.bounces``), or None when the message is not one."""
    bounce = bounce_detect(message)
    return bounce.as_metadata() if bounce is not None else None


# Headers the receiving servers add (one per hop), naming the address the message was delivered to: it may be a
# plus-address that To and Cc do not show (a Bcc, a forward, a list).
_DELIVERY_HEADERS = {"delivered-to", "x-original-to", "envelope-to", "x-envelope-to"}


def _delivery_recipients(message: Message) -> list[str]:
    """Addresses from the delivery headers, lowercased, in order, once each."""
    found = []
    for key, value in message.raw_items():
        if key.lower() not in _DELIVERY_HEADERS:
            continue
        for _, address in email.utils.getaddresses([" ".join(str(value).split())]):
            address = address.lower()
            if "@" in address and address not in found:
                found.append(address)
    return found[:MAX_REFERENCES]


# Body and attachments


class _Body:
    def __init__(self):
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[InboundAttachment] = []
        self.skipped: list[dict] = []
        self.total_bytes = 0

    def add_attachment(self, *, filename: str, content_type: str, content: bytes, content_id: str = "") -> None:
        limits = settings.HELPDESK
        size = len(content)
        if size > limits["MAX_ATTACHMENT_BYTES"]:
            reason = f"attachment is {size} bytes; the limit is {limits['MAX_ATTACHMENT_BYTES']}"
        elif self.total_bytes + size > limits["MAX_ATTACHMENTS_TOTAL_BYTES"]:
            reason = f"attachments total more than {limits['MAX_ATTACHMENTS_TOTAL_BYTES']} bytes"
        else:
            self.total_bytes += size
            self.attachments.append(
                InboundAttachment(
                    filename=filename[:255], content_type=content_type[:100], content=content, content_id=content_id
                )
            )
            return
        self.skipped.append({"filename": filename[:255], "size": size, "reason": reason})


MAX_MIME_DEPTH = 50
MAX_MIME_PARTS = 1000


def _collect(part: Message, body: _Body, depth: int = 0) -> None:
    if depth == 0:
        _check_mime_shape(part)
    content_type = _content_type(part)
    if content_type == "message/rfc822":
        _add_embedded_message(part, body)
        return
    if part.is_multipart():
        payload = part.get_payload()
        if content_type.startswith("multipart/"):
            for child in payload if isinstance(payload, list) else []:
                _collect(child, body, depth + 1)
        else:
            # message/delivery-status and other message/* parts: keep what they said, as a file.
            body.add_attachment(
                filename=_filename(part) or f"{content_type.split('/')[-1]}.txt",
                content_type=content_type,
                content=_part_bytes(part),
            )
        return
    filename = _filename(part)
    disposition = _disposition(part)
    if content_type in ("text/plain", "text/html") and not filename and disposition != "attachment":
        text = _decode(part)
        (body.texts if content_type == "text/plain" else body.htmls).append(text)
        return
    try:
        content = part.get_payload(decode=True) or b""
    except Exception:
        content = b""
    if not content and not filename:
        return
    content_id = _content_id(part)
    body.add_attachment(
        filename=filename or _default_filename(content_type, content_id, len(body.attachments) + 1),
        content_type=content_type,
        content=content,
        content_id=content_id,
    )


def _check_mime_shape(message: Message) -> None:
    """No person's mail nests parts 50 deep or has a thousand of them; such a message is quarantined (raw kept)
    before anything recurses into it. Walked with an explicit stack, so the walk itself cannot overflow."""
    stack, count = [(message, 0)], 0
    while stack:
        part, depth = stack.pop()
        count += 1
        if depth > MAX_MIME_DEPTH:
            raise PayloadError(f"MIME parts are nested more than {MAX_MIME_DEPTH} levels deep")
        if count > MAX_MIME_PARTS:
            raise PayloadError(f"message has more than {MAX_MIME_PARTS} MIME parts")
        payload = part.get_payload() if part.is_multipart() else None
        children = payload if isinstance(payload, list) else []
        stack.extend((child, depth + 1) for child in children if isinstance(child, Message))


def _add_embedded_message(part: Message, body: _Body) -> None:
    """A forwarded message/rfc822 part is kept whole, as an .eml file."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    content = _part_bytes(inner) if isinstance(inner, Message) else _part_bytes(part)
    filename = _filename(part)
    if not filename:
        subject = _decoded_header(inner, "Subject") if isinstance(inner, Message) else ""
        filename = (re.sub(r"[^\w .-]+", "_", subject).strip()[:100] or "message") + ".eml"
    body.add_attachment(filename=filename, content_type="message/rfc822", content=content)


def _part_bytes(part: Message) -> bytes:
    try:
        return part.as_bytes(policy=email.policy.compat32)
    except Exception:
        try:
            return part.as_string(policy=email.policy.compat32).encode("utf-8", errors="replace")
        except Exception:
            return b""


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    return " ".join(str(name).split())


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _content_id(part: Message) -> str:
    return _raw_header(part, "Content-ID").strip().strip("<>").strip()


def _default_filename(content_type: str, content_id: str, index: int) -> str:
    extension = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "text/plain": "txt"}.get(
        content_type, content_type.split("/")[-1] if "/" in content_type else "bin"
    )
    stem = re.sub(r"[^\w.-]+", "_", content_id.split("@")[0])[:100] if content_id else f"attachment-{index}"
    return f"{stem}.{extension}"


def _decode(part: Message) -> str:
    """The part's text in its declared charset; an unknown charset is tried as UTF-8, then as Latin-1."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        payload = str(part.get_payload() or "").encode("utf-8", errors="replace")
    try:
        charset = part.get_content_charset() or "us-ascii"
    except Exception:
        charset = "us-ascii"
    try:
        return payload.decode(charset)
    except LookupError:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("latin-1", errors="replace")
    except UnicodeDecodeError:
        try:
            return payload.decode(charset, errors="replace")
        except Exception:
            return payload.decode("latin-1", errors="replace")
    except Exception:
        return payload.decode("latin-1", errors="replace")
