"""Visitor tokens and identity verification for the chat widget.

A visitor token is what the browser keeps to be the same visitor again: a ``django.core.signing`` value (salt
``chat.visitor``) of ``{"v": visitor public id hex, "c": channel id}``. It is bound to its channel, so a token from
one site's widget is worthless on another's, and it expires after ``CHAT_VISITOR_TOKEN_MAX_AGE_DAYS`` (each new
session hands out a fresh one, so only visitors gone that long start over).

Identity verification is the host site vouching for its logged-in user, as Intercom and Chatwoot do it: the site's
server computes ``hex(HMAC-SHA256(identity_secret, user_id))`` with the channel's secret and the widget passes it on.
"""

import hashlib
import hmac
import uuid
from datetime import timedelta

from django.conf import settings
from django.core import signing

from channels_app.models import Channel

SALT = "chat.visitor"


def visitor_token_sign(*, visitor_public_id: uuid.UUID, channel_id: int) -> str:
    return signing.dumps({"v": visitor_public_id.hex, "c": channel_id}, salt=SALT)


def visitor_token_verify(*, token: str, channel: Channel) -> uuid.UUID | None:
    """The visitor public id the token names, if it is genuine, not expired and issued for ``channel``; else None."""
    if not token or not isinstance(token, str) or len(token) > 500:
        return None
    max_age = timedelta(days=settings.HELPDESK["CHAT_VISITOR_TOKEN_MAX_AGE_DAYS"])
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.BadSignature:  # SignatureExpired is a BadSignature too
        return None
    if not isinstance(payload, dict) or payload.get("c") != channel.pk:
        return None
    try:
        return uuid.UUID(hex=str(payload.get("v", "")))
    except ValueError:
        return None


def identity_hmac_compute(*, secret: str, user_id: str) -> str:
    """What the host site's server computes (documented for integrators; the tests use it as the site would)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def identity_hmac_is_valid(*, secret: str, user_id: str, given: str) -> bool:
    """Constant-time comparison, so the answer's timing tells nothing about how much of a forged HMAC was right.
    A channel without a secret verifies nobody."""
    if not secret or not user_id or not isinstance(given, str):
        return False
    expected = identity_hmac_compute(secret=secret, user_id=user_id)
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())
