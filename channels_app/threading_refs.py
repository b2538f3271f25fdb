"""The references the desk hands out so that an answer finds its ticket again: our signed Message-ID and the
signed reply token of a plus-address. Both are built when a message goes out and read back when one comes in, by
the core's threading and by the email provider alike, so they belong to no provider.

Message-IDs are deterministic (a retried send reuses the id, so the recipient's client drops the repeat) and
signed (a stranger cannot claim to answer one of our messages). Reply tokens ride in the plus-address of
Reply-To, so a reply finds its ticket even when the customer's client drops the threading headers.
"""

import hashlib
import hmac
import re

from django.conf import settings

_MAC_CHARS = 10
# The {10} below is _MAC_CHARS.
_OUR_MESSAGE_ID = re.compile(r"^<?hd\.([1-9][0-9]{0,18})\.([0-9a-f]{10})@[^<>@\s]+>?$")
_REPLY_TOKEN = re.compile(r"^t([1-9][0-9]{0,18})-([0-9a-f]{10})$")


def our_message_id(*, message_id: int, domain: str) -> str:
    """``<hd.<message_id>.<mac>@<domain>>``: the same message always gets the same id."""
    return f"<hd.{message_id}.{_mac('message-id', str(message_id))}@{domain}>"


def parse_our_message_id(value: str) -> int | None:
    """The message id inside one of our Message-IDs, or None if it is not ours or its signature does not match."""
    return _verified_id(_OUR_MESSAGE_ID.match((value or "").strip()), purpose="message-id")


def reply_token(*, ticket_id: int) -> str:
    """A short signed token naming a ticket, for the plus-address a customer replies to."""
    return f"t{ticket_id}-{_mac('reply-token', str(ticket_id))}"


def parse_reply_token(token: str) -> int | None:
    """The ticket id in a reply token, or None if it is malformed or its signature does not match.

    Mail servers may change the case of a local part, so the token is read case-insensitively.
    """
    return _verified_id(_REPLY_TOKEN.match((token or "").strip().lower()), purpose="reply-token")


def _verified_id(match: re.Match | None, *, purpose: str) -> int | None:
    """The id a signed value names (``match`` groups: id, mac), or None when it did not match or the mac is
    wrong; compared in constant time."""
    if match is None:
        return None
    value, mac = match.groups()
    return int(value) if hmac.compare_digest(mac, _mac(purpose, value)) else None


def _mac(purpose: str, value: str) -> str:
    # A key per purpose, so a token for one use is never valid for another. The "email" in the key is historical:
    # changing it would orphan every reference already out in customers' mailboxes.
    key = hashlib.sha256(f"helpdesk-email-{purpose}:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:_MAC_CHARS]
