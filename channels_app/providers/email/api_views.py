"""Raw RFC 822 email over HTTP, for MTA pipes (``curl --data-binary @- -H 'Content-Type: message/rfc822'``)."""

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.models import Channel
from channels_app.providers.email.parsing import message_provider_id
from channels_app.providers.email.webhooks import CONTENT_TYPE
from channels_app.services.inbound_receive import inbound_event_receive
from helpdesk.api.permissions import CanPostChannelMessages
from helpdesk.api.schema import ErrorSerializer
from helpdesk.errors import Conflict, DomainError, PayloadTooLarge


class EmailRawReceiptSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The stored inbound event.")
    status = serializers.CharField(help_text="accepted, or duplicate when this Message-ID was received before.")
    event_status = serializers.CharField(help_text="received, processed, failed or quarantined.")
    url = serializers.CharField(help_text="Poll this for the processing status.")


_ERROR = ErrorSerializer


class ChannelEmailRawApi(APIView):
    """Post one raw message to an email channel. It is stored as posted (202) and parsed by a worker; the same
    Message-ID again is a duplicate (200) and changes nothing. A message over the parser's MAX_EMAIL_BYTES but
    within INBOUND_EMAIL_MAX_BODY_BYTES is stored and quarantined with its size; a larger body is refused (413)
    and stays with the sender's MTA, which bounces or retries it."""

    permission_classes = [CanPostChannelMessages]
    # ApiBodySizeLimitMiddleware allows this route up to the email cap instead of API_MAX_BODY_BYTES.
    body_limit_setting = "INBOUND_EMAIL_MAX_BODY_BYTES"

    @extend_schema(
        request={CONTENT_TYPE: OpenApiTypes.BINARY},
        responses={
            202: EmailRawReceiptSerializer,
            200: OpenApiResponse(EmailRawReceiptSerializer, description="Already received: the stored event."),
            400: OpenApiResponse(_ERROR, description="Empty body."),
            409: OpenApiResponse(_ERROR, description="Not an email channel, or the channel is disabled."),
            413: OpenApiResponse(_ERROR, description="Body over INBOUND_EMAIL_MAX_BODY_BYTES."),
            415: OpenApiResponse(_ERROR, description="Not message/rfc822."),
        },
        summary="Post a raw RFC 822 message to an email channel (integration token of this channel)",
    )
    def post(self, request, channel_id: int):
        # The permission check matched the token to this channel; its row is already loaded.
        channel = request.auth.channel
        if channel.kind != Channel.Kind.EMAIL:
            raise Conflict("This endpoint takes messages for email channels only.", code="not_an_email_channel")
        if not channel.is_active:
            raise Conflict("This channel is disabled.", code="channel_disabled")
        if request.content_type.split(";")[0].strip().lower() != CONTENT_TYPE:
            return Response({"detail": f"Send the message as {CONTENT_TYPE}."}, status=415)
        limit = settings.INBOUND_EMAIL_MAX_BODY_BYTES
        # Read at most one byte over the limit: a body without Content-Length passed the middleware unmeasured.
        raw = request._request.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"The message is over {limit} bytes (INBOUND_EMAIL_MAX_BODY_BYTES).")
        if not raw.strip():
            raise DomainError("The body is empty; post the raw message.", code="empty_message")
        event, created = inbound_event_receive(
            channel=channel, provider_id=message_provider_id(raw), raw=raw, content_type=CONTENT_TYPE
        )
        url = reverse("channel-event", kwargs={"channel_id": channel.pk, "event_id": str(event.public_id)})
        receipt = {
            "id": event.public_id,
            "status": "accepted" if created else "duplicate",
            "event_status": event.status,
            "url": request.build_absolute_uri(url),
        }
        return Response(
            EmailRawReceiptSerializer(receipt).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )
