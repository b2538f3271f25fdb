"""Reading the parts of a possible bounce: the notice it writes, its delivery-status fields, and the headers and
text of the original message it returns. Every accessor is guarded: real bounces carry broken MIME and charsets
that do not exist."""

import contextlib
import email.parser
import email.policy
import html
import re
from email.message import Message

MAX_PARTS = 200
MAX_NOTICE_CHARS = 20_000
ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")


# Where the notice stops and a copy of the original message starts.
_ORIGINAL_STARTS = re.compile(
    r"^\s*(-{2,}.*(original message|returned message|unsent message|message (follows|headers)|"
    r"below this line is a copy|copy of (the )?(original )?message|original message follows)|"
    r"-+ ?below this line is a copy|return-path:\s|received:\s.+)",
    re.IGNORECASE | re.MULTILINE,
)


class BounceParts:
    """The pieces of a bounce: its own text (the notice), the status blocks of a delivery-status part, and the
    headers and text of the original message it returns."""

    def __init__(self):
        self.notice_texts: list[str] = []
        self.embedded_texts: list[str] = []
        self.status_blocks: list[dict[str, str]] = []
        self.original_headers: list[dict[str, str]] = []
        self.has_status_part = False
        self.seen = 0

    def full_notice_text(self) -> str:
        return "\n\n".join(self.notice_texts)

    def notice_text(self) -> str:
        text = "\n\n".join(self.notice_texts)[:MAX_NOTICE_CHARS]
        # A notice that quotes the original inline: only what comes before the copy is the notice.
        match = _ORIGINAL_STARTS.search(text)
        if match and match.start() > 0:
            return text[: match.start()]
        return text

    def collect(self, part: Message, *, embedded: bool) -> None:
        self.seen += 1
        if self.seen > MAX_PARTS:
            return
        kind = content_type(part)
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            if embedded:
                # A report inside a returned or forwarded message is not about this one.
                return
            self.has_status_part = True
            self.status_blocks.extend(_status_blocks(part))
            return
        if kind in ("message/rfc822", "message/global"):
            payload = _payload(part)
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                self.original_headers.append(_lower_headers(inner))
                self.collect(inner, embedded=True)
            return
        if kind in ("text/rfc822-headers", "text/global-headers", "message/rfc822-headers"):
            payload = _payload(part)
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                headers = payload[0]
                text = "\n".join(f"{name}: {value}" for name, value in _lower_headers(headers).items())
            else:
                text = payload if isinstance(payload, str) and kind.startswith("message/") else _text(part)
                headers = _parse_headers(text)
            self.original_headers.append(_lower_headers(headers))
            self.embedded_texts.append(text)
            return
        if part.is_multipart():
            payload = _payload(part)
            for child in payload if isinstance(payload, list) else []:
                if isinstance(child, Message):
                    self.collect(child, embedded=embedded)
            return
        if kind.startswith("multipart/"):
            # Declared multipart but its boundary is missing or broken: the body is one block of text.
            payload = _payload(part)
            if isinstance(payload, str):
                (self.embedded_texts if embedded else self.notice_texts).append(payload)
            return
        if kind.startswith("text/"):
            text = _text(part)
            if kind == "text/html":
                text = _html_to_text(text)
            (self.embedded_texts if embedded else self.notice_texts).append(text)


def _status_blocks(part: Message) -> list[dict[str, str]]:
    """The per-message and per-recipient field blocks of a delivery-status part, field names lower-cased."""
    payload = _payload(part)
    blocks = []
    if isinstance(payload, list) and payload and all(isinstance(item, Message) for item in payload):
        blocks = [_lower_headers(item) for item in payload]
    else:
        text = payload if isinstance(payload, str) else _text(part)
        for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
            if chunk.strip():
                blocks.append(_lower_headers(_parse_headers(chunk)))
    return [block for block in blocks if block]


def _parse_headers(text: str) -> Message:
    return email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text.lstrip("\n"), headersonly=True)


def _lower_headers(message: Message) -> dict[str, str]:
    headers: dict[str, str] = {}
    with contextlib.suppress(Exception):
        for name, value in message.raw_items():
            headers.setdefault(str(name).strip().lower(), " ".join(str(value).split()))
    return headers


def _payload(part: Message):
    try:
        return part.get_payload()
    except Exception:
        return None


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return ""


def param(part: Message, name: str) -> str:
    try:
        return str(part.get_param(name, "") or "")
    except Exception:
        return ""


def header(message: Message, name: str) -> str:
    """The header's raw value, unfolded; "" when absent. Raw, so a malformed header cannot raise."""
    wanted = name.lower()
    with contextlib.suppress(Exception):
        for key, value in message.raw_items():
            if key.lower() == wanted:
                return " ".join(str(value).split())
    return ""


def subject(message: Message) -> str:
    plain = plain_header(message, "Subject")
    if plain is not None:
        return plain
    try:
        value = message.get("Subject")
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:
        return header(message, "Subject")


# Printable ASCII (folding allowed) without an encoded word: decoding such an unstructured header gives back its text,
# so it is read as sent instead of through the standard policy's parser (most subjects are unique, so its cache of
# parsed headers does not help them, and that parse is a tenth of a plain message's parsing).
_PLAIN_TEXT = re.compile(r"[\t\r\n\x20-\x7e]*")


def plain_header(message: Message, name: str) -> str | None:
    """An unstructured header's decoded value (unfolded, whitespace runs as one space) when decoding cannot change
    it, "" when absent; None when it has to be decoded."""
    wanted = name.lower()
    with contextlib.suppress(Exception):
        for key, value in message.raw_items():
            if key.lower() == wanted:
                if isinstance(value, str) and "=?" not in value and _PLAIN_TEXT.fullmatch(value):
                    return " ".join(value.split())
                return None
        return ""
    return None


def sender(message: Message) -> tuple[str, str]:
    raw = header(message, "From")
    with contextlib.suppress(Exception):
        value = message.get("From")
        addresses = list(value.addresses) if value is not None else []
        if addresses:
            return addresses[0].display_name or "", addresses[0].addr_spec or ""
    match = ADDRESS.search(raw)
    return raw, match.group(0) if match else ""


def _text(part: Message) -> str:
    """The part's text; an unknown or lying charset falls back to UTF-8, then Latin-1."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        raw = _payload(part)
        return raw if isinstance(raw, str) else ""
    try:
        charset = part.get_content_charset() or "us-ascii"
    except Exception:
        charset = "us-ascii"
    for candidate in (charset, "utf-8"):
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return payload.decode("latin-1", errors="replace")


def _html_to_text(value: str) -> str:
    value = re.sub(r"(?is)<(script|style|head|title)\b.*?</\1\s*>", " ", value)
    value = re.sub(r"(?i)<br\s*/?>|</p\s*>|</div\s*>|</tr\s*>", "\n", value)
    return html.unescape(re.sub(r"<[^>]+>", " ", value))
