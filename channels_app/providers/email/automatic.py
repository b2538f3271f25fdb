"""Whether an inbound email was sent by a machine, and so must get no automatic answer (RFC 3834).

Answering a machine is how mail loops start: an acknowledgement to an autoresponder, a notice to a mailer daemon,
a reply to our own message that came back. The reason is kept so an agent can see why nothing was sent.
"""

import re
from email.message import Message

from channels_app.providers.email.bounces import is_automatic_sender
from channels_app.threading_refs import parse_our_message_id

_NO_REPLY_LOCAL_PART = re.compile(r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|no[-_.]?response)([-_.+]|$)", re.I)
# RFC 3834 names bulk, junk and list; auto_reply is what many autoresponders write.
_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}


def automatic_reason(message: Message, *, sender_address: str, is_bounce: bool) -> str:
    """Why ``message`` must not be answered automatically, or "" when a person may have written it."""
    if is_bounce:
        return "bounce"
    # The keyword only: parameters may name an address (owner-email=...), which reasons must not carry.
    auto_submitted = _header(message, "Auto-Submitted").lower().split(";")[0].strip()
    if auto_submitted and auto_submitted != "no":
        return f"auto-submitted: {auto_submitted[:50]}"
    if _header(message, "Return-Path") == "<>":
        return "empty return path"
    precedence = _header(message, "Precedence").lower()
    if precedence in _BULK_PRECEDENCE:
        return f"precedence: {precedence}"
    suppress = _header(message, "X-Auto-Response-Suppress")
    if suppress and suppress.lower() != "none":
        return "x-auto-response-suppress"
    if _header(message, "List-Id"):
        return "list-id"
    if _header(message, "X-Autoreply") or _header(message, "X-Autorespond"):
        return "autoresponder header"
    local_part = sender_address.rpartition("@")[0]
    if is_automatic_sender(sender_address) or _NO_REPLY_LOCAL_PART.match(local_part):
        return "automatic sender"
    if parse_our_message_id(_header(message, "Message-ID")) is not None:
        return "our own message"
    return ""


def _header(message: Message, name: str) -> str:
    wanted = name.lower()
    try:
        for key, value in message.raw_items():
            if key.lower() == wanted:
                return " ".join(str(value).split())
    except Exception:
        return ""
    return ""
