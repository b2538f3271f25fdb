"""Channel endpoints: admins configure channels; the API channel takes messages from the company's systems."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.adapters.base import PayloadError
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel, InboundEvent
from channels_app.selectors import (
    channel_get,
    channel_list,
    inbound_event_get,
    inbound_event_list,
    inbound_event_message,
)
from channels_app.services.channels import channel_create, channel_update
from channels_app.services.inbound_receive import inbound_event_receive, inbound_event_retry
from helpdesk.api.fields import AsciiIntegerField
from helpdesk.api.pagination import NewestFirstCursorPagination
from helpdesk.api.permissions import CanPostChannelMessages, IsAdmin
from helpdesk.api.schema import Base64Field
from helpdesk.errors import Conflict, DomainError, PayloadTooLarge


class ChannelOutputSerializer(serializers.ModelSerializer):
    secret_names = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Channel
        fields = [
            "id",
            "kind",
            "provider",
            "name",
            "address",
            "public_key",
            "settings",
            "secret_names",
            "default_team",
            "continue_open_ticket",
            "is_active",
            "created_at",
            "updated_at",
        ]


class ChannelInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Channel.Kind.choices, required=False)
    provider = serializers.CharField(max_length=32, required=False, allow_blank=True)
    name = serializers.CharField(max_length=100, required=False)
    address = serializers.CharField(max_length=320, required=False, allow_blank=True)
    settings = serializers.DictField(required=False)
    secrets = serializers.DictField(
        child=serializers.CharField(allow_blank=True, allow_null=True),
        required=False,
        write_only=True,
        help_text="Write-only. Keys given replace stored ones; null or empty removes a key. Never returned.",
    )
    default_team = serializers.PrimaryKeyRelatedField(
        queryset=Channel._meta.get_field("default_team").related_model.objects.all(),
        required=False,
        allow_null=True,
        pk_field=AsciiIntegerField(),
    )
    continue_open_ticket = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)


class ChannelCreateInputSerializer(ChannelInputSerializer):
    """What the schema documents for a create: a kind and a name are needed (the view says so with a 400)."""

    kind = serializers.ChoiceField(choices=Channel.Kind.choices)
    name = serializers.CharField(max_length=100)


class ChannelListCreateApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses=ChannelOutputSerializer(many=True), summary="List channels (admins)")
    def get(self, request):
        return Response(ChannelOutputSerializer(channel_list(), many=True).data)

    @extend_schema(
        request=ChannelCreateInputSerializer, responses={201: ChannelOutputSerializer}, summary="Create a channel"
    )
    def post(self, request):
        data = ChannelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "kind" not in values or "name" not in values:
            raise DomainError("A channel needs a kind and a name.")
        channel = channel_create(**values)
        return Response(ChannelOutputSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses=ChannelOutputSerializer, summary="Get a channel (admins)")
    def get(self, request, channel_id: int):
        return Response(ChannelOutputSerializer(channel_get(channel_id=channel_id)).data)

    @extend_schema(request=ChannelInputSerializer, responses=ChannelOutputSerializer, summary="Change a channel")
    def patch(self, request, channel_id: int):
        channel = channel_get(channel_id=channel_id)
        data = ChannelInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "kind" in values and values.pop("kind") != channel.kind:
            raise DomainError("A channel's kind cannot change; create another channel.")
        channel = channel_update(channel=channel, **values)
        return Response(ChannelOutputSerializer(channel).data)


class InboundEventOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    channel_id = serializers.IntegerField()
    provider_id = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField()
    attempts = serializers.IntegerField()
    received_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)


def _event_body(event: InboundEvent, *, duplicate: bool = False) -> dict:
    body = InboundEventOutputSerializer(event).data
    message = inbound_event_message(event=event) if event.status == InboundEvent.Status.PROCESSED else None
    body["message_id"] = message.pk if message else None
    body["ticket_id"] = message.ticket_id if message else None
    body["customer_id"] = message.customer_id if message else None
    body["duplicate"] = duplicate
    return body


# What the API channel's adapter (channels_app/providers/api/adapter.py) accepts, for the schema: the view hands the raw
# body to the adapter, which is what validates it.
_NON_BLANK = r"\S"


class InboundApiSenderSerializer(serializers.Serializer):
    schema_requires_one_of = ("external_id", "email", "phone", "chat_visitor")

    external_id = serializers.CharField(required=False, max_length=320, help_text="Your system's id for the person.")
    email = serializers.EmailField(required=False, max_length=320)
    phone = serializers.CharField(
        required=False, max_length=320, help_text="A phone number in any format (stored as E.164); else 400."
    )
    chat_visitor = serializers.CharField(required=False, max_length=320, help_text="A chat visitor's public id.")
    name = serializers.CharField(required=False, max_length=200)
    verified = serializers.BooleanField(required=False, help_text="You verified email/phone.")


class InboundApiAttachmentSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    content_type = serializers.CharField(required=False, max_length=100)
    content_base64 = Base64Field(help_text="The file's bytes in standard base64.")


class InboundApiMessageSerializer(serializers.Serializer):
    """A text, an html body or an attachment; the sender by at least one identity."""

    schema_requires_one_of = ("text", "html", "attachments")

    id = serializers.RegexField(
        _NON_BLANK, max_length=255, help_text="Your id for this message; the same id twice is one message."
    )
    sender = InboundApiSenderSerializer()
    subject = serializers.CharField(required=False, max_length=500)
    text = serializers.RegexField(_NON_BLANK, required=False, max_length=settings.HELPDESK["MAX_MESSAGE_TEXT_CHARS"])
    html = serializers.RegexField(
        _NON_BLANK,
        required=False,
        max_length=settings.HELPDESK["MAX_MESSAGE_TEXT_CHARS"] * 2,
        help_text="Sanitised before it is stored.",
    )
    sent_at = serializers.DateTimeField(required=False)
    ticket_id = serializers.IntegerField(
        required=False, min_value=1, help_text="Continue this ticket (must be the sender's)."
    )
    in_reply_to = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Ids of earlier messages; the first 50 are kept."
    )
    attachments = serializers.ListField(child=InboundApiAttachmentSerializer(), required=False, min_length=1)
    metadata = serializers.DictField(required=False)


class InboundEventReceiptSerializer(InboundEventOutputSerializer):
    message_id = serializers.IntegerField(allow_null=True, help_text="Set once the event is processed.")
    ticket_id = serializers.IntegerField(allow_null=True)
    customer_id = serializers.IntegerField(allow_null=True)
    duplicate = serializers.BooleanField(help_text="This id was posted before: the stored event is answered.")


class InboundEventPostReceiptSerializer(InboundEventReceiptSerializer):
    url = serializers.URLField(help_text="Poll this for the processing status.")


class ChannelMessageCreateApi(APIView):
    """Post a customer's message through an API channel. It is stored raw at once (202) and processed onto the
    customer's timeline by a worker; poll the returned event, or post again with the same id (idempotent)."""

    permission_classes = [CanPostChannelMessages]

    @extend_schema(
        request=InboundApiMessageSerializer,
        responses={
            202: InboundEventPostReceiptSerializer,
            200: OpenApiResponse(InboundEventPostReceiptSerializer, description="Already received: the stored event."),
            400: OpenApiResponse(description="Malformed message."),
            413: OpenApiResponse(description="Body over API_MAX_BODY_BYTES."),
            415: OpenApiResponse(description="Not JSON."),
        },
        summary="Post an inbound message (integration token of this channel)",
    )
    def post(self, request, channel_id: int):
        # The permission check matched the token to this channel; its row is already loaded.
        channel = request.auth.channel
        if channel.kind != Channel.Kind.API:
            raise Conflict("This endpoint takes messages for API channels only.", code="not_an_api_channel")
        if not channel.is_active:
            raise Conflict("This channel is disabled.", code="channel_disabled")
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type != "application/json":
            return Response({"detail": "Send the message as application/json."}, status=415)
        raw = request.body
        if len(raw) > settings.API_MAX_BODY_BYTES:
            # A chunked body carries no Content-Length for the middleware to refuse up front.
            raise PayloadTooLarge(f"Request body is {len(raw)} bytes; the limit is {settings.API_MAX_BODY_BYTES}.")
        try:
            adapter = adapter_for(channel)
        except AdapterNotFound as exc:
            raise Conflict(str(exc), code="no_adapter") from exc
        try:
            messages = adapter.parse(channel=channel, payload=raw, content_type=content_type)
        except PayloadError as exc:
            return Response({"detail": f"Malformed message: {exc}"}, status=400)
        event, created = inbound_event_receive(
            channel=channel, provider_id=messages[0].provider_id, raw=raw, content_type=content_type
        )
        body = _event_body(event, duplicate=not created)
        body["url"] = request.build_absolute_uri(f"/api/v1/channels/{channel.pk}/events/{event.public_id}")
        return Response(body, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class ChannelEventDetailApi(APIView):
    permission_classes = [CanPostChannelMessages | IsAdmin]

    @extend_schema(responses=InboundEventReceiptSerializer, summary="Status of a posted message")
    def get(self, request, channel_id: int, event_id: str):
        channel = channel_get(channel_id=channel_id)
        event = inbound_event_get(public_id=event_id, channel=channel)
        return Response(_event_body(event))


class InboundEventListApi(APIView):
    permission_classes = [IsAdmin]
    pagination_class = NewestFirstCursorPagination  # also what the schema documents: {next, previous, results}

    @extend_schema(responses=InboundEventOutputSerializer(many=True), summary="Inbound events (admins)")
    def get(self, request):
        status_filter = request.query_params.get("status")
        if status_filter and status_filter not in InboundEvent.Status.values:
            raise DomainError(f"status must be one of {', '.join(InboundEvent.Status.values)}.")
        events = inbound_event_list(status=status_filter)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(InboundEventOutputSerializer(page, many=True).data)


class InboundEventRetryApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(InboundEventOutputSerializer, description="Queued to be processed again."),
            409: OpenApiResponse(description="Not a failed or quarantined event."),
        },
        summary="Process a failed event again",
    )
    def post(self, request, event_id: str):
        event = inbound_event_get(public_id=event_id)
        if not inbound_event_retry(event=event):
            raise Conflict(f"Only failed or quarantined events can be retried; this one is {event.status}.")
        event.refresh_from_db()
        return Response(InboundEventOutputSerializer(event).data, status=status.HTTP_202_ACCEPTED)
