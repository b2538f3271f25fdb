"""Recognising bounces (delivery status notifications) and reading what they say.

Two kinds reach a desk: RFC 3464 reports (a ``message/delivery-status`` part, usually inside
``multipart/report``) and the free-text notices older or careless MTAs still send (qmail, Exim, Postfix without
DSN, Sendmail, Yahoo, AOL, Exchange, GroupWise, SMTP32...). The second kind has no structure, so it is recognised
by who sent it (a mailer daemon, an empty return path), the subject, and the phrases those MTAs use. A customer
writing about an undelivered parcel must not be taken for one: from an ordinary address, only a notice that speaks
of "your message" the way a mail system does and names where it failed counts, and even then
``Bounce.is_certain`` is False, so processing takes it in as a message when it returns nothing we sent.

``bounce_detect`` never raises: real bounces carry bogus charsets, broken MIME and truncated originals.
"""

import logging
import re
from dataclasses import dataclass, field
from email.message import Message

from channels_app.providers.email import bounce_parts as mime
from channels_app.providers.email.bounce_parts import BounceParts

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 20
MAX_MESSAGE_IDS = 20
MAX_DIAGNOSTIC_CHARS = 500

_ADDRESS = mime.ADDRESS
_MESSAGE_ID_LINE = re.compile(r"^[\s>]*(?:original-)?message-id\s*:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_MESSAGE_ID_TOKEN = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_REPLY = re.compile(r"(?<!\d)([45][0-5]\d)(?:[ -]|$)", re.MULTILINE)

_DAEMON_LOCAL_PART = re.compile(
    r"^\\?(mailer[-_. ]?daemon|postmaster|mdaemon|mail[-_.]?delivery[-_.]?(system|subsystem)?|ndr|bounces?|"
    r"mail[-_.]?administrator)\b",
    re.IGNORECASE,
)
_DAEMON_NAME = re.compile(r"mail(er)?[-_ ]?(delivery|daemon|administrator|system)|postmaster|jetmail", re.IGNORECASE)

_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery[- ](status|failure|failed|has failed|problem|notification|report|warning)|"
    r"failure (notice|delivery)|failed mail|returned mail|mail (delivery|error|failure|not delivered)|"
    r"could not be delivered|not (been )?delivered|nondeliver|non-deliver|delayed mail|message delayed|"
    r"warning: message|processing error|automatically rejected|user unknown|mail system error|mail failed|"
    r"returning (message )?to sender|"
    r"недоставлен|не доставлено",
    re.IGNORECASE,
)

# Phrases only a mail system writes: any one of them makes a bounce, whoever signed it.
_FINGERPRINTS = re.compile(
    r"this is the qmail-send program|this is the postfix program|"
    r"this message was created automatically by mail delivery software|"
    r"-+ ?transcript of session follows ?-+|the original message was received at .* from|"
    r"unable to deliver message to the following address|"
    r"did not reach the following recipient|delivery to the following recipients? (has )?failed|"
    r"i'?m afraid i wasn'?t able to deliver|the following addresses had permanent fatal errors|"
    r"your message cannot be delivered to the following recipients|"
    r"your mail cannot be delivered to the following address|"
    r"message could not be delivered to the following recipients|"
    r"undeliverable to the following|the mail you sent could not be delivered to|"
    r"the following recipients? (did|could) not receive this message|"
    r"delivery has failed to these recipients or (groups|distribution lists)",
    re.IGNORECASE,
)
# A piece of each fingerprint above, casefolded: text without any of them cannot match, and most mail is searched
# for these plain strings only (the pattern costs several times more). Keep in step with _FINGERPRINTS.
_FINGERPRINT_PIECES = (
    "qmail-send program",
    "postfix program",
    "mail delivery software",
    "transcript of session follows",
    "original message was received at",
    "unable to deliver message to the following",
    "did not reach the following recipient",
    "delivery to the following recipient",
    "able to deliver",
    "permanent fatal errors",
    "be delivered to the following",
    "undeliverable to the following",
    "could not be delivered to",
    "not receive this message",
    "delivery has failed to these recipients",
)
# Wording a bounce uses; enough together with an automatic sender or a bounce subject.
_FAILURE_PHRASES = re.compile(
    r"could not be delivered|couldn'?t be delivered|cannot be delivered|was not delivered|undeliverable|"
    r"not delivered|delivery (has )?failed|failed to deliver|unable to deliver|could not deliver|"
    r"permanent(ly)? (fatal )?(error|failure)|user unknown|unknown user|no such (user|mailbox|recipient)|"
    r"mailbox (unavailable|full|not found|is full|quota)|recipient address rejected|address rejected|"
    r"does not exist|doesn'?t exist|not (a )?valid (recipient|mailbox|address)|invalid (recipient|address)|"
    r"automatically rejected|returned to sender|returning message to sender|host unknown|"
    r"account (is )?(disabled|inactive|has been disabled)|over quota|quota exceeded|exceeded .*quota|"
    r"name ?server error|message delayed|has not yet been delivered|delivery attempts will continue|"
    r"non-?delivery|wasn'?t able to deliver|rejected your message|delivery to the following|"
    r"failed addresses|no valid recipients|(was|were) rejected|not accepted|user not found|is unavailable|"
    r"postponed|continue to try|无法(发送|投递|送达)|не может быть доставлено|не доставлено",
    re.IGNORECASE,
)
_DELAY = re.compile(
    r"\bdelay(ed)?\b|not yet been delivered|will (continue to )?(be )?retr(y|ied)|"
    r"still being retried|delivery attempts will continue|will keep trying|warning: message|postponed|"
    r"continue to try|"
    r"mail delivery warning|temporar(y|ily) (failure|error|unable)",
    re.IGNORECASE,
)
_PERMANENT = re.compile(
    r"permanent|given up|giving up|gave up|fatal error|user unknown|unknown user|no such (user|mailbox)|"
    r"does not exist|returning message to sender|returned to sender",
    re.IGNORECASE,
)
_FORWARDED = re.compile(r"^\s*(fwd?|tr|wg|rv|fw)\s*:", re.IGNORECASE)
_QUOTED_PARTY_LINE = re.compile(r"^\s*(to|cc|bcc)\s*:", re.IGNORECASE)
# How a mail system speaks of the message it returns, as opposed to a person writing about a parcel.
_NOTICE_WORDING = re.compile(
    r"(your|the) (e-?mail|message|mail)\b.{0,120}?(could not|cannot|can'?t|couldn'?t|was not|has not|not) be(en)? "
    r"deliver|following (recipient|address|user)|non-?delivery report|requested action not taken|"
    r"delivery of (e-?mail|your message)|the following (e-?mail|mail|message) (could not|cannot|was not)|"
    r"could not deliver message|failed recipient|unable to deliver message",
    re.IGNORECASE | re.DOTALL,
)
# Lines of a quoted original whose addresses are not the failed recipients.
_NOT_RECIPIENT_LINE = re.compile(
    r"^\s*(from|sender|reply-to|return-path|received|message-id|references|in-reply-to|errors-to|"
    r"reporting-mta|received-from-mta|x-[\w-]+|by|id|cc)\s*:",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BounceRecipient:
    address: str
    status: str = ""  # an RFC 3463 enhanced status code such as "5.1.1", when the bounce gives one
    action: str = ""  # RFC 3464 Action: failed, delayed, delivered, relayed, expanded
    diagnostic: str = ""
    is_permanent: bool = True


@dataclass(frozen=True)
class Bounce:
    """What a bounce says. ``is_permanent`` is False for delay warnings and success reports: the delivery they
    talk about has not failed (yet)."""

    kind: str  # "dsn" for RFC 3464 reports, "notice" for free-text ones
    is_permanent: bool
    recipients: tuple[BounceRecipient, ...] = ()
    status: str = ""
    diagnostic: str = ""
    # Message-IDs of the message that bounced, the most reliable first (embedded copy, quoted headers, the
    # bounce's own In-Reply-To/References).
    original_message_ids: tuple[str, ...] = field(default=())
    # What made it a bounce: a delivery status report, a failed-recipients header, a mail system's own wording, an
    # automatic sender, or only the wording of a notice from an ordinary address.
    evidence: str = ""

    @property
    def is_certain(self) -> bool:
        """False when only the wording says so: such a message that matches nothing we sent may be a person's."""
        return self.evidence != "wording"

    def as_metadata(self) -> dict:
        return {
            "kind": self.kind,
            "is_permanent": self.is_permanent,
            "evidence": self.evidence,
            "is_certain": self.is_certain,
            "status": self.status,
            "diagnostic": self.diagnostic,
            "recipients": [
                {
                    "address": recipient.address,
                    "status": recipient.status,
                    "action": recipient.action,
                    "diagnostic": recipient.diagnostic,
                    "is_permanent": recipient.is_permanent,
                }
                for recipient in self.recipients
            ],
            "original_message_ids": list(self.original_message_ids),
        }


def bounce_detect(message: Message) -> Bounce | None:
    """The bounce ``message`` is, or None when it is not one. Never raises."""
    try:
        return _detect(message)
    except Exception:
        logger.warning("channels_app.bounce_detect_failed", exc_info=True)
        return None


def is_automatic_sender(address: str, display_name: str = "") -> bool:
    """A mail system's own address (mailer-daemon, postmaster...), or no address at all."""
    local_part = (address or "").rpartition("@")[0] if "@" in (address or "") else (address or "")
    if not local_part.strip():
        return True
    return bool(_DAEMON_LOCAL_PART.match(local_part.strip())) or bool(
        display_name and _DAEMON_NAME.search(display_name)
    )


# Detection


def _detect(message: Message) -> Bounce | None:
    parts = BounceParts()
    parts.collect(message, embedded=False)
    subject = mime.subject(message)
    notice = parts.notice_text()
    if parts.status_blocks or _is_bare_dsn(message, parts):
        return _dsn_bounce(message, parts, subject=subject, notice=notice)

    sender_name, sender_address = mime.sender(message)
    automatic_sender = (
        is_automatic_sender(sender_address, sender_name)
        or mime.header(message, "Return-Path").strip() == "<>"
        or mime.header(message, "Auto-Submitted").strip().lower().startswith("auto-generated")
    )
    failed_header = mime.header(message, "X-Failed-Recipients")
    bounce_subject = bool(_BOUNCE_SUBJECT.search(subject))
    if _FORWARDED.match(subject) and not automatic_sender and not failed_header:
        # A customer forwarding a bounce to the desk is a customer's message.
        return None
    # A mail system returning a message it could not deliver; a missing From alone does not make one.
    returns_original = bool(parts.original_headers) and (
        bool(sender_address) or mime.header(message, "Return-Path").strip() == "<>"
    )
    # The costly searches run only where they can change the answer: most mail is from a person, with an ordinary
    # subject, and only the fingerprint search (one pass over the notice) is needed to tell it is not a bounce.
    if failed_header:
        evidence = "failed-recipients header"
    elif _has_fingerprint(notice):
        evidence = "mail system wording"
    elif not (automatic_sender or bounce_subject):
        return None
    elif automatic_sender and (bounce_subject or returns_original or _FAILURE_PHRASES.search(notice)):
        evidence = "automatic sender"
    elif (
        bounce_subject
        and _FAILURE_PHRASES.search(notice)
        and _NOTICE_WORDING.search(notice)
        and (returns_original or _notice_recipients(message, notice, failed_header))
    ):
        # From an address a person might use: only a notice that talks like a mail system about "your message"
        # and names where it failed. Still, see ``Bounce.is_certain``.
        evidence = "wording"
    else:
        return None
    recipients = _notice_recipients(message, notice, failed_header)
    is_permanent = _notice_is_permanent(subject, notice)
    status = _notice_status(notice)
    diagnostic = _notice_diagnostic(notice)
    return Bounce(
        kind="notice",
        is_permanent=is_permanent,
        recipients=tuple(
            BounceRecipient(
                address=address,
                status=status,
                action="failed" if is_permanent else "delayed",
                diagnostic=diagnostic,
                is_permanent=is_permanent,
            )
            for address in recipients
        ),
        status=status,
        diagnostic=diagnostic,
        original_message_ids=_original_ids(message, parts, notice),
        evidence=evidence,
    )


def _has_fingerprint(notice: str) -> bool:
    folded = notice.casefold()
    return any(piece in folded for piece in _FINGERPRINT_PIECES) and bool(_FINGERPRINTS.search(notice))


def _is_bare_dsn(message: Message, parts: BounceParts) -> bool:
    """A multipart/report that says delivery-status but whose status part is missing or unreadable."""
    content_type = mime.content_type(message)
    report_type = mime.param(message, "report-type").lower()
    return (content_type == "multipart/report" and report_type == "delivery-status") or parts.has_status_part


def _dsn_bounce(message: Message, parts: BounceParts, *, subject: str, notice: str) -> Bounce:
    recipients = []
    for block in parts.status_blocks:
        address = _dsn_address(block.get("final-recipient", "")) or _dsn_address(block.get("original-recipient", ""))
        if not address:
            continue
        action = block.get("action", "").split()[0].lower() if block.get("action", "").split() else ""
        status_match = _ENHANCED_STATUS.search(block.get("status", ""))
        status = ".".join(status_match.groups()) if status_match else ""
        reply_code = _SMTP_REPLY.search(block.get("status", ""))
        if action in ("failed", "failure", "error"):
            # The MTA gave up, whatever class its status code has (4.4.7: the message expired in the queue).
            is_permanent = True
        elif action in ("delayed", "delivered", "relayed", "expanded"):
            is_permanent = False
        elif status:
            is_permanent = status.startswith("5")
        else:
            is_permanent = not (reply_code and reply_code.group(1).startswith("4"))
        diagnostic = " ".join(block.get("diagnostic-code", "").split())[:MAX_DIAGNOSTIC_CHARS]
        if address.lower() not in {recipient.address.lower() for recipient in recipients}:
            recipients.append(
                BounceRecipient(
                    address=address, status=status, action=action, diagnostic=diagnostic, is_permanent=is_permanent
                )
            )
    if recipients:
        is_permanent = any(recipient.is_permanent for recipient in recipients)
        first = next((recipient for recipient in recipients if recipient.is_permanent == is_permanent), recipients[0])
        status, diagnostic = first.status, first.diagnostic or _notice_diagnostic(notice)
    else:
        # A report whose per-recipient fields are missing or mangled: read it as a notice.
        is_permanent = _notice_is_permanent(subject, notice)
        status, diagnostic = _notice_status(notice), _notice_diagnostic(notice)
        recipients = [
            BounceRecipient(
                address=address,
                status=status,
                action="failed" if is_permanent else "delayed",
                diagnostic=diagnostic,
                is_permanent=is_permanent,
            )
            for address in _notice_recipients(message, notice, mime.header(message, "X-Failed-Recipients"))
        ]
    return Bounce(
        kind="dsn",
        is_permanent=is_permanent,
        recipients=tuple(recipients[:MAX_RECIPIENTS]),
        status=status,
        diagnostic=diagnostic,
        original_message_ids=_original_ids(message, parts, notice),
        evidence="delivery status report",
    )


def _dsn_address(value: str) -> str:
    """``rfc822; ann@example.com`` -> ``ann@example.com``; other address types give ""."""
    kind, _, address = value.partition(";")
    if not address:
        address, kind = kind, "rfc822"
    if kind.strip().lower() != "rfc822":
        return ""
    match = _ADDRESS.search(address)
    return match.group(0) if match else ""


# Free-text notices


def _notice_is_permanent(subject: str, notice: str) -> bool:
    if _DELAY.search(subject):
        return False
    # "Delivery attempts will continue" beside "user unknown" is a failure all the same.
    return not (_DELAY.search(notice) and not _PERMANENT.search(notice))


def _notice_status(notice: str) -> str:
    match = _ENHANCED_STATUS.search(notice)
    if match:
        return ".".join(match.groups())
    return ""


def _notice_diagnostic(notice: str) -> str:
    """The first line that says why: an SMTP reply, a status code or a failure phrase."""
    for line in notice.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        if _SMTP_REPLY.search(line) or _ENHANCED_STATUS.search(line) or _FAILURE_PHRASES.search(line):
            return line[:MAX_DIAGNOSTIC_CHARS]
    return ""


def _notice_recipients(message: Message, notice: str, failed_header: str) -> list[str]:
    """Addresses the notice says failed: X-Failed-Recipients, else the addresses in the notice that are not the
    bounce's own parties nor mail systems'."""
    parties = " ".join(mime.header(message, name) for name in ("From", "To", "Cc", "Return-Path", "Sender"))
    own = {address.lower() for address in _ADDRESS.findall(parties)}
    found = []
    for address in _ADDRESS.findall(failed_header):
        if address.lower() not in {item.lower() for item in found}:
            found.append(address)
    if found:
        return found[:MAX_RECIPIENTS]
    message_ids = " ".join(_MESSAGE_ID_LINE.findall(notice)).lower()
    lines = notice.splitlines()
    quoted_headers = []
    for line in lines:
        if _NOT_RECIPIENT_LINE.match(line):
            continue
        if _QUOTED_PARTY_LINE.match(line):
            # The original's To/Cc, quoted: the failed recipient only when nothing better is named.
            quoted_headers.append(line)
            continue
        _add_addresses(found, line, own, message_ids)
    if not found:
        for line in quoted_headers:
            _add_addresses(found, line, own, message_ids)
    return found[:MAX_RECIPIENTS]


def _add_addresses(found: list[str], line: str, own: set[str], message_ids: str) -> None:
    for address in _ADDRESS.findall(line):
        address = address.strip(".")
        if address[:5].upper() == "SMTP=":
            address = address[5:]  # Exchange's "SMTP=ann@example.com"
        lowered = address.lower()
        if lowered in own or f"{lowered}>" in message_ids or is_automatic_sender(address):
            continue
        if lowered not in {item.lower() for item in found}:
            found.append(address)


# Message-IDs of the original


def _original_ids(message: Message, parts: BounceParts, notice: str) -> tuple[str, ...]:
    own_id = mime.header(message, "Message-ID").strip()
    ids: list[str] = []

    def add(value: str) -> None:
        value = value.strip()
        if value and value != own_id and value not in ids and len(value) <= 255:
            ids.append(value)

    for headers in parts.original_headers:
        for token in _MESSAGE_ID_TOKEN.findall(headers.get("message-id", "")):
            add(token)
    # The whole of the bounce's own text: a notice often quotes the original's headers inline, below the notice.
    for text in (parts.full_notice_text(), *parts.embedded_texts):
        for token in _MESSAGE_ID_LINE.findall(text):
            add(token)
    for block in parts.status_blocks:
        for token in _MESSAGE_ID_TOKEN.findall(block.get("original-envelope-id", "")):
            add(token)
    for name in ("In-Reply-To", "References"):
        for token in _MESSAGE_ID_TOKEN.findall(mime.header(message, name)):
            add(token)
    return tuple(ids[:MAX_MESSAGE_IDS])
