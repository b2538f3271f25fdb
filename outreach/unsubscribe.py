"""Signed unsubscribe links: one per customer and purpose, verified with Django's signing (a salt of their own,
so no other signed value of the desk is ever accepted here, and a maximum age)."""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from channels_app.adapters.base import PURPOSE_INCIDENT, PURPOSE_NOTICE, PURPOSE_SURVEY

_SALT = "outreach.unsubscribe"

# What each purpose is called to the customer (the unsubscribe page, an email's footer); agents read
# channels_app.adapters.base.PURPOSE_LABELS instead.
CUSTOMER_LABELS = {
    PURPOSE_NOTICE: "updates about your requests",
    PURPOSE_INCIDENT: "outage notifications",
    PURPOSE_SURVEY: "surveys",
}


class UnsubscribeLinkInvalid(Exception):
    """The link was altered, is not one of ours, or has expired (``is_expired``)."""

    def __init__(self, *, is_expired: bool = False):
        super().__init__("expired" if is_expired else "bad signature")
        self.is_expired = is_expired


@dataclass(frozen=True)
class UnsubscribeRequest:
    customer_id: int
    purpose: str


def unsubscribe_token(*, customer_id: int, purpose: str) -> str:
    return signing.dumps({"c": customer_id, "p": purpose}, salt=_SALT)


def unsubscribe_url(*, customer_id: int, purpose: str) -> str:
    token = unsubscribe_token(customer_id=customer_id, purpose=purpose)
    return settings.PUBLIC_BASE_URL + reverse("outreach:unsubscribe", kwargs={"token": token})


def unsubscribe_token_read(token: str) -> UnsubscribeRequest:
    """What a token names; ``UnsubscribeLinkInvalid`` when it is bad or older than the maximum age."""
    max_age = settings.HELPDESK["OUTREACH_UNSUBSCRIBE_MAX_AGE_DAYS"] * 86400
    try:
        data = signing.loads(token, salt=_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise UnsubscribeLinkInvalid(is_expired=True) from exc
    except signing.BadSignature as exc:
        raise UnsubscribeLinkInvalid() from exc
    if not isinstance(data, dict):
        raise UnsubscribeLinkInvalid()
    customer_id, purpose = data.get("c"), data.get("p")
    if isinstance(customer_id, bool) or not isinstance(customer_id, int) or not isinstance(purpose, str):
        raise UnsubscribeLinkInvalid()
    return UnsubscribeRequest(customer_id=customer_id, purpose=purpose)
