"""Sending an SMS through Twilio's REST API (the ``twilio`` client), and checking a channel's credentials.

Failures are sorted the way the delivery pipeline needs them: 429 and 5xx, timeouts and network errors may pass
(retry); any other 4xx is Twilio's final word (e.g. 21211 invalid 'To', 21610 the recipient texted STOP), kept
with Twilio's code and message so the agent sees why. Every send first takes a slot of the sender's rate limit.
This module talks to Twilio only; the delivery service records what happened.
"""

import logging
import re
from dataclasses import dataclass

import requests
from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException

from channels_app.adapters.base import PermanentDeliveryError, RetryableDeliveryError, SendRateLimited
from channels_app.models import Channel
from channels_app.providers.twilio.client import TwilioCredentialsMissing, twilio_client, twilio_sender
from channels_app.sms.rate_limit import sms_send_slot_take
from channels_app.types import DeliveryReceipt, OutboundMessage

logger = logging.getLogger(__name__)

_LIBRARY_PREFIX = re.compile(r"^Unable to \w+ record: ")


def send_twilio_message(*, channel: Channel, message: OutboundMessage) -> DeliveryReceipt:
    """Hand ``message`` to Twilio. Its status callback URL names our message id, so the callback finds the
    delivery even when it arrives before this call has returned Twilio's sid.

    Raises ``PermanentDeliveryError`` (4xx, no credentials, no sender), ``SendRateLimited`` (no slot free for the
    sender now) or ``RetryableDeliveryError`` (429, 5xx, network).
    """
    try:
        client = twilio_client(channel=channel)
    except TwilioCredentialsMissing as exc:
        raise PermanentDeliveryError(str(exc), code="not_configured") from exc
    sender = twilio_sender(channel=channel)
    if not sender:
        raise PermanentDeliveryError(
            f"The SMS channel {channel.name} has neither a number nor a messaging_service_sid to send from.",
            code="not_configured",
        )
    _take_send_slot(channel=channel, sender=sender)
    callback = (
        settings.PUBLIC_BASE_URL
        + reverse("sms_webhooks:twilio-status", args=[channel.public_key])
        + f"?message={message.message_id}"
    )
    try:
        sent = client.messages.create(to=message.recipient, body=message.text, status_callback=callback, **sender)
    except TwilioRestException as exc:
        raise _delivery_error(exc) from exc
    except (requests.RequestException, TwilioException) as exc:
        raise RetryableDeliveryError(f"Could not reach Twilio: {type(exc).__name__}", code="network") from exc
    logger.info(
        "channels_app.twilio_message_created", extra={"channel_id": channel.pk, "message_id": message.message_id}
    )
    return DeliveryReceipt(provider_message_id=sent.sid)


def _take_send_slot(*, channel: Channel, sender: dict) -> None:
    rate = (channel.settings or {}).get("send_rate_per_second") or settings.HELPDESK["SMS_SEND_RATE_PER_SECOND"]
    wait = sms_send_slot_take(sender=next(iter(sender.values())), rate_per_second=float(rate))
    if wait > 0:
        raise SendRateLimited(f"The sender's rate of {rate}/s is used up; next slot in {wait:.2f}s.", retry_after=wait)


def _twilio_message(exc: TwilioRestException) -> str:
    # The library prefixes Twilio's own message with what it was doing ("Unable to create record: ").
    return _LIBRARY_PREFIX.sub("", exc.msg or "") or "no message"


def _delivery_error(exc: TwilioRestException) -> Exception:
    code = str(exc.code or exc.status)
    detail = f"Twilio error {code}: {_twilio_message(exc)} (HTTP {exc.status})"
    if exc.status == 429 or exc.status >= 500:
        return RetryableDeliveryError(detail, code=code)
    return PermanentDeliveryError(detail, code=code)


@dataclass(frozen=True)
class TwilioCheck:
    account_name: str
    account_status: str
    test_message_sid: str = ""


class TwilioCheckFailed(Exception):
    """The check did not pass; the message says why in words an admin can act on."""


def twilio_connection_check(*, channel: Channel, test_recipient: str = "") -> TwilioCheck:
    """Prove the channel's credentials by fetching its Twilio account; with ``test_recipient`` (E.164) also send
    it a short test message from the channel's sender (no status callback: it belongs to no ticket)."""
    try:
        client = twilio_client(channel=channel)
        account = client.api.v2010.accounts(channel.secrets["account_sid"]).fetch()
    except TwilioCredentialsMissing as exc:
        raise TwilioCheckFailed(str(exc)) from exc
    except TwilioRestException as exc:
        raise TwilioCheckFailed(
            f"Twilio refused the credentials: error {exc.code or exc.status}: {_twilio_message(exc)}"
        ) from exc
    except (requests.RequestException, TwilioException) as exc:
        raise TwilioCheckFailed(f"Could not reach Twilio: {type(exc).__name__}") from exc
    check = TwilioCheck(account_name=account.friendly_name or "", account_status=account.status or "")
    if not test_recipient:
        return check
    sender = twilio_sender(channel=channel)
    if not sender:
        raise TwilioCheckFailed("The credentials work, but the channel has no number or messaging_service_sid.")
    try:
        _take_send_slot(channel=channel, sender=sender)
        sent = client.messages.create(
            to=test_recipient, body=f"Test message from the help desk channel {channel.name}.", **sender
        )
    except SendRateLimited as exc:
        raise TwilioCheckFailed(f"The credentials work; {exc.detail} Try the test message again then.") from exc
    except TwilioRestException as exc:
        raise TwilioCheckFailed(
            "The credentials work, but Twilio refused the test message: "
            f"error {exc.code or exc.status}: {_twilio_message(exc)}"
        ) from exc
    except (requests.RequestException, TwilioException) as exc:
        raise TwilioCheckFailed(f"The credentials work, but Twilio could not be reached: {type(exc).__name__}") from exc
    return TwilioCheck(account_name=check.account_name, account_status=check.account_status, test_message_sid=sent.sid)
