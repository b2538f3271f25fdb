"""Twilio's inbound message webhook: one URL per SMS channel (``/inbound/sms/twilio/<public_key>/``).

Verify the signature, check the message is for this channel, store the raw form once per MessageSid, answer TwiML
at once; parsing and ingestion happen in the worker (``inbound_event_process``). Nothing is stored for a request
that fails a check, and a redelivery (same MessageSid) gets the same answer and stores nothing new.

The answer is empty TwiML, except for HELP (the channel's ``help_text``) and, when the channel configures them,
opt-out/opt-in confirmations. Twilio sends its own confirmation for STOP on long codes, so there is none by default.
"""

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.messaging_response import MessagingResponse

from channels_app.adapters.base import SignatureError
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel
from channels_app.providers.twilio.inbound import is_phone_shaped
from channels_app.providers.twilio.signature import TwilioNotConfigured
from channels_app.services.inbound_receive import inbound_event_receive
from channels_app.sms.keywords import HELP, OPT_IN, OPT_OUT, sms_keyword_kind
from customers.identities import normalise_phone

logger = logging.getLogger(__name__)

PROVIDER = "twilio"


@csrf_exempt
@require_POST
def twilio_inbound_webhook(request: HttpRequest, public_key: str) -> HttpResponse:
    channel = Channel.objects.filter(public_key=public_key, kind=Channel.Kind.SMS, is_active=True).first()
    if channel is None or not _is_twilio(channel):
        return _refuse("No active Twilio SMS channel has this webhook URL.", "channel_not_found", 404)
    try:
        # Read first: the raw bytes are what is stored, and they cannot be read once request.POST has parsed them.
        raw = request.body
    except RequestDataTooBig:
        return _refuse("The request body is too large.", "too_large", 413)

    try:
        adapter_for(channel).verify(channel=channel, request=request)
    except TwilioNotConfigured:
        logger.error("channels_app.twilio_webhook_not_configured", extra={"channel_id": channel.pk})
        return _refuse("This SMS channel is not configured (no Twilio auth token).", "not_configured", 503)
    except SignatureError:
        return _refuse("The request signature is not valid.", "invalid_signature", 403)

    fields = request.POST
    message_sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
    if not message_sid.strip():
        return _refuse("MessageSid is missing.", "missing_field", 400)
    if not (fields.get("From") or "").strip():
        return _refuse("From is missing.", "missing_field", 400)
    if "Body" not in fields:
        # An empty Body is normal (an MMS with only a picture); a missing one is not Twilio's message webhook.
        return _refuse("Body is missing.", "missing_field", 400)
    if not _is_for_channel(channel, fields):
        logger.warning("channels_app.twilio_wrong_recipient", extra={"channel_id": channel.pk})
        return _refuse("The message is not addressed to this channel's numbers.", "wrong_recipient", 404)
    account_sid = (channel.secrets or {}).get("account_sid")
    if fields.get("AccountSid") and account_sid and fields["AccountSid"] != account_sid:
        logger.warning("channels_app.twilio_wrong_account", extra={"channel_id": channel.pk})
        return _refuse("The message belongs to another Twilio account.", "wrong_account", 403)

    inbound_event_receive(
        channel=channel, provider_id=message_sid.strip(), raw=raw, content_type=request.content_type or ""
    )
    keyword = sms_keyword_kind(fields["Body"], provider_type=fields.get("OptOutType", ""))
    return _twiml(_reply_text(channel, keyword))


def _is_twilio(channel: Channel) -> bool:
    # A blank provider means the kind's default adapter; this view only serves Twilio's.
    try:
        return adapter_for(channel).provider == PROVIDER
    except AdapterNotFound:
        return False


def _is_for_channel(channel: Channel, fields) -> bool:
    config = channel.settings or {}
    region = config.get("phone_region")
    numbers = {_e164(value, region) for value in [channel.address, *(config.get("numbers") or [])] if value}
    numbers.discard("")
    to = _e164(fields.get("To") or "", region)
    if numbers:
        return bool(to) and to in numbers
    # A channel that sends through a Messaging Service and lists no numbers: the service must be its own.
    service = config.get("messaging_service_sid")
    return bool(service) and fields.get("MessagingServiceSid") == service


def _e164(value: str, region: str | None) -> str:
    if not isinstance(value, str) or not is_phone_shaped(value):
        return ""
    try:
        return normalise_phone(value, region=region)
    except ValueError:
        return ""


def _reply_text(channel: Channel, keyword: str | None) -> str:
    config = channel.settings or {}
    if keyword == HELP:
        return config.get("help_text") or (
            f"{channel.name}: reply to this number and our team will answer. Reply STOP to stop texts, START to "
            "receive them again."
        )
    if keyword == OPT_OUT:
        return config.get("opt_out_text") or ""
    if keyword == OPT_IN:
        return config.get("opt_in_text") or ""
    return ""


def _twiml(text: str) -> HttpResponse:
    response = MessagingResponse()
    if text:
        response.message(text)
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


def _refuse(detail: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)
