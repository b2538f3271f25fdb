"""Building the ``twilio`` REST client for one SMS channel, from its write-only secrets, with a timeout on every
request (the library's default is to wait forever)."""

from django.conf import settings
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels_app.models import Channel


class TwilioCredentialsMissing(Exception):
    """The channel has no ``account_sid``/``auth_token`` secrets: nothing can be sent until an admin sets them."""


def twilio_client(*, channel: Channel) -> Client:
    """A client authenticated as the channel's Twilio account; ``TwilioCredentialsMissing`` without credentials."""
    secrets = channel.secrets or {}
    account_sid = secrets.get("account_sid", "")
    auth_token = secrets.get("auth_token", "")
    if not account_sid or not auth_token:
        raise TwilioCredentialsMissing(
            f"The SMS channel {channel.name} has no Twilio account_sid and auth_token; an admin sets them."
        )
    http_client = TwilioHttpClient(timeout=settings.HELPDESK["OUTBOUND_HTTP_TIMEOUT_SECONDS"])
    return Client(account_sid, auth_token, http_client=http_client)


def twilio_sender(*, channel: Channel) -> dict:
    """Who a message comes from: the channel's own number, else its Messaging Service (Twilio picks the number)."""
    if channel.address:
        return {"from_": channel.address}
    service_sid = (channel.settings or {}).get("messaging_service_sid", "")
    if service_sid:
        return {"messaging_service_sid": service_sid}
    return {}
