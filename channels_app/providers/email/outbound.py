"""Building the email for one outbound message: our signed Message-ID and a reply token in Reply-To
(``channels_app.threading_refs``), threading headers, and headers that no message text can add to."""

import re
from email.utils import formataddr, parseaddr

from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives

from channels_app.models import Channel
from channels_app.threading_refs import our_message_id, reply_token
from channels_app.types import OutboundMessage

_MAX_REFERENCES = 20
# Every line break Python's str.splitlines knows, and the other control characters: none may reach a header.
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_REPLY_PREFIX = re.compile(r"^\s*(re|aw)\s*:", re.IGNORECASE)


def build_email(*, channel: Channel, message: OutboundMessage, automatic: bool = False) -> EmailMultiAlternatives:
    """The email for ``message`` from ``channel``'s address.

    ``message.in_reply_to`` holds earlier provider ids on the ticket, newest first (as ``delivery_send`` builds
    it): the newest becomes In-Reply-To, up to 20 of them References (oldest first). Raises ValueError when the
    channel has no address or the recipient is not one plain address.
    """
    address = _single_address(channel.address)
    if address is None:
        raise ValueError("the channel has no valid sender address")
    recipient = _single_address(message.recipient)
    if recipient is None:
        raise ValueError("the recipient is not a single email address")
    local_part, _, domain = address.rpartition("@")
    reply_to = f"{local_part.split('+', 1)[0]}+{reply_token(ticket_id=message.ticket_id)}@{domain}"
    message_id = our_message_id(message_id=message.message_id, domain=domain)
    headers = {"Message-ID": message_id}
    references = _threading_ids(message.in_reply_to)
    if references:
        headers["In-Reply-To"] = references[-1]
        headers["References"] = " ".join(references)
    if automatic:
        headers["Auto-Submitted"] = "auto-replied"
    email = EmailMultiAlternatives(
        subject=_subject(message.subject, ticket_id=message.ticket_id),
        body=message.text,
        from_email=formataddr((_sender_name(channel, author_name=message.author_name), address)),
        to=[recipient],
        # Checked when the reply was written; anything that is not one plain address still never reaches a header.
        cc=[address for address in map(_single_address, message.cc) if address],
        reply_to=[reply_to],
        headers=headers,
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    for attachment in message.attachments:
        with default_storage.open(attachment.path, "rb") as handle:
            content = handle.read()
        email.attach(
            _one_line(attachment.filename) or "attachment",
            content,
            attachment.content_type or "application/octet-stream",
        )
    return email


def _one_line(value: str) -> str:
    return " ".join(_UNSAFE_IN_HEADER.sub(" ", value or "").split())


def _single_address(value: str) -> str | None:
    if not value or _UNSAFE_IN_HEADER.search(value):
        return None
    name, address = parseaddr(value)
    if name or address != value.strip() or address.count("@") != 1 or "," in address:
        return None
    local_part, _, domain = address.partition("@")
    if not local_part or not domain:
        return None
    return address


def _sender_name(channel: Channel, *, author_name: str) -> str:
    company = _one_line((channel.settings or {}).get("from_name") or channel.name)
    author = _one_line(author_name)
    return f"{author} via {company}" if author else company


def _subject(subject: str, *, ticket_id: int) -> str:
    subject = _one_line(subject)
    if not _REPLY_PREFIX.match(subject):
        subject = f"Re: {subject}".strip()
    reference = f"[#{ticket_id}]"
    if reference not in subject:
        subject = f"{subject} {reference}"
    return subject


def _threading_ids(provider_ids: tuple[str, ...]) -> list[str]:
    """Message-IDs, oldest first, each in angle brackets; ids that could not be Message-IDs are dropped."""
    result = []
    for value in provider_ids[:_MAX_REFERENCES]:
        value = _one_line(value)
        if not value or " " in value or "@" not in value:
            continue
        if not value.startswith("<"):
            value = f"<{value.strip('<>')}>"
        if value not in result:
            result.append(value)
    result.reverse()
    return result
