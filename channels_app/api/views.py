"""Channel endpoints: admins configure channels; the API channel takes messages from the company's systems."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
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
from helpdesk.api.pagination import NewestFirstCursorPagination
from helpdesk.api.permissions import CanPostChannelMessages, IsAdmin
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
    )
    continue_open_ticket = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)


class ChannelListCreateApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses=ChannelOutputSerializer(many=True), summary="List channels (admins)")
    def get(self, request):
        return Response(ChannelOutputSerializer(channel_list(), many=True).data)

    @extend_schema(request=ChannelInputSerializer, responses={201: ChannelOutputSerializer}, summary="Create a channel")
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


_NEUTRAL_MESSAGE = inline_serializer(
    name="InboundApiMessage",
    fields={
        "id": serializers.CharField(help_text="Your id for this message; the same id twice is one message."),
        "sender": inline_serializer(
            name="InboundApiSender",
            fields={
                "external_id": serializers.CharField(required=False, help_text="Your system's id for the person."),
                "email": serializers.EmailField(required=False),
                "phone": serializers.CharField(required=False, help_text="Any format; stored as E.164."),
                "name": serializers.CharField(required=False),
                "verified": serializers.BooleanField(required=False, help_text="You verified email/phone."),
            },
        ),
        "subject": serializers.CharField(required=False),
        "text": serializers.CharField(required=False),
        "html": serializers.CharField(required=False, help_text="Sanitised before it is stored."),
        "sent_at": serializers.DateTimeField(required=False),
        "ticket_id": serializers.IntegerField(required=False, help_text="Continue this ticket (must be the sender's)."),
        "in_reply_to": serializers.ListField(child=serializers.CharField(), required=False),
        "attachments": serializers.ListField(
            child=inline_serializer(
                name="InboundApiAttachment",
                fields={
                    "filename": serializers.CharField(),
                    "content_type": serializers.CharField(required=False),
                    "content_base64": serializers.CharField(),
                },
            ),
            required=False,
        ),
        "metadata": serializers.DictField(required=False),
    },
)
_EVENT_RESPONSE = inline_serializer(
    name="InboundEventReceipt",
    fields={
        "id": serializers.UUIDField(),
        "status": serializers.CharField(),
        "message_id": serializers.IntegerField(allow_null=True),
        "ticket_id": serializers.IntegerField(allow_null=True),
        "duplicate": serializers.BooleanField(),
    },
)


class ChannelMessageCreateApi(APIView):
    """Post a customer's message through an API channel. It is stored raw at once (202) and processed onto the
    customer's timeline by a worker; poll the returned event, or post again with the same id (idempotent)."""

    permission_classes = [CanPostChannelMessages]

    @extend_schema(
        request=_NEUTRAL_MESSAGE,
        responses={
            202: _EVENT_RESPONSE,
            200: OpenApiResponse(_EVENT_RESPONSE, description="Already received: the stored event."),
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

    @extend_schema(responses=_EVENT_RESPONSE, summary="Status of a posted message")
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

    @extend_schema(request=None, responses=InboundEventOutputSerializer, summary="Process a failed event again")
    def post(self, request, event_id: str):
        event = inbound_event_get(public_id=event_id)
        if not inbound_event_retry(event=event):
            raise Conflict(f"Only failed or quarantined events can be retried; this one is {event.status}.")
        event.refresh_from_db()
        return Response(InboundEventOutputSerializer(event).data, status=status.HTTP_202_ACCEPTED)
