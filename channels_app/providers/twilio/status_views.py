"""Twilio's status callback: where a sent message is now (sent, delivered, undelivered, failed...).

The URL is the one ``send_twilio_message`` gave Twilio: the channel's public key in the path and our message id in
the query, both covered by Twilio's signature. Callbacks are applied only forward (``delivery_status_apply``); one
for a delivery we do not know, or for another send of the message, is acknowledged and ignored, so Twilio does not
retry it.
"""

import logging

from django.http import Http404, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels_app.adapters.base import SignatureError
from channels_app.adapters.registry import adapter_for
from channels_app.models import Channel
from channels_app.providers.twilio.signature import TwilioNotConfigured
from channels_app.services.delivery_status import delivery_status_apply, delivery_status_find

logger = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@csrf_exempt
@require_POST
def twilio_status_callback(request, public_key: str):
    channel = Channel.objects.filter(public_key=public_key, kind=Channel.Kind.SMS).first()
    if channel is None:
        raise Http404("No such SMS channel.")
    try:
        adapter_for(channel).verify(channel=channel, request=request)
    except TwilioNotConfigured:
        # Nothing can be verified yet: fail visibly (Twilio logs it) rather than accept unsigned statuses.
        return HttpResponse("This channel has no Twilio credentials yet.", status=503, content_type="text/plain")
    except SignatureError:
        return HttpResponse("Invalid signature.", status=403, content_type="text/plain")
    form = request.POST
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    delivery = delivery_status_find(channel=channel, message_id=request.GET.get("message", ""), provider_message_id=sid)
    if delivery is None:
        logger.info("channels_app.twilio_status_ignored", extra={"channel_id": channel.pk})
    else:
        delivery_status_apply(
            delivery=delivery, provider_status=status, provider_message_id=sid, error_code=form.get("ErrorCode", "")
        )
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")
