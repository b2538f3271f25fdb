"""Twilio SMS/MMS: the first SMS provider behind the channel adapter interface.

Signatures are checked with the ``twilio`` package's own ``RequestValidator`` (``signature.py`` here), form payloads
become neutral messages in ``inbound.py``, sends go through the ``twilio`` client in ``outbound.py``. Another SMS
provider is one more folder like this one.
"""

from django.utils import timezone

from channels_app.adapters.base import FORMAT_SMS, REACHABLE, AdapterDefaults, Reachability
from channels_app.adapters.registry import register
from channels_app.models import Channel, SmsOptOut
from channels_app.providers.twilio.inbound import parse_twilio_form
from channels_app.providers.twilio.outbound import send_twilio_message
from channels_app.providers.twilio.signature import verify_twilio_request
from channels_app.types import DeliveryReceipt, InboundMessage, OutboundMessage


class TwilioSmsAdapter(AdapterDefaults):
    kind = Channel.Kind.SMS
    provider = "twilio"
    recipient_identity_kinds = ("phone",)
    message_format = FORMAT_SMS
    supports_list_unsubscribe = False

    def verify(self, *, channel, request) -> None:
        verify_twilio_request(channel=channel, request=request)

    def parse(self, *, channel, payload, content_type: str = "") -> list[InboundMessage]:
        return [parse_twilio_form(channel=channel, payload=payload)]

    def send(self, *, channel, message: OutboundMessage) -> DeliveryReceipt:
        return send_twilio_message(channel=channel, message=message)

    def reachability(self, *, channel, identity, purpose: str) -> Reachability:
        # A customer who texted STOP gets no SMS from us, for any purpose (carriers' rules and the law), until START.
        opted_out_at = SmsOptOut.objects.filter(phone=identity.value).values_list("created_at", flat=True).first()
        return REACHABLE if opted_out_at is None else _opted_out(opted_out_at)

    def reachability_batch(self, *, channels, customer_id: int, identities, purpose: str) -> dict[int, Reachability]:
        # The opt-out is per phone number, whichever of our numbers it was texted to: one answer for every channel.
        phones = [identity.value for identity in identities if identity.kind in self.recipient_identity_kinds]
        opted_out_at = (
            SmsOptOut.objects.filter(phone__in=phones)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
            if phones and channels
            else None
        )
        answer = REACHABLE if opted_out_at is None else _opted_out(opted_out_at)
        return {channel.pk: answer for channel in channels}


def _opted_out(opted_out_at) -> Reachability:
    return Reachability(
        is_reachable=False,
        reason="sms_opted_out",
        detail=f"This customer opted out of SMS (texted STOP on {timezone.localtime(opted_out_at):%Y-%m-%d}); "
        "reply on another channel, or wait until they text START.",
    )


register(TwilioSmsAdapter, default=True)
