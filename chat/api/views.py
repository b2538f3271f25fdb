"""The chat widget's REST API, called by the widget's script from the host site's pages (another origin).

Every request names its chat channel by public key and must come from one of the channel's ``allowed_origins``
(403 otherwise; ``chat.cors`` adds CORS headers for the same origins only). Visitors authenticate with the signed
token ``X-Visitor-Token`` (``chat.tokens``), never with a session or cookie, so there is no CSRF to guard: a
cross-site page cannot read or send the token. A bad, expired or other channel's token is a 403 with no data.
"""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from chat.cors import chat_channel_for_request, origin_is_allowed
from chat.models import ChatVisitor
from chat.selectors import (
    chat_message_data,
    chat_visitor_get,
    visitor_attachment_get,
    visitor_messages_page,
    widget_config,
)
from chat.services.messages import visitor_attachment_post, visitor_message_post, visitor_read_mark
from chat.services.rate_limits import visitor_message_slot_take
from chat.services.visitors import VisitorIdentity, visitor_leave, visitor_session_start
from chat.tokens import visitor_token_sign, visitor_token_verify
from helpdesk.api.fields import AsciiIntegerField
from helpdesk.errors import NotFound, PermissionDenied
from helpdesk.text import ascii_int
from tickets.api.attachment_views import SAFE_IMAGE_TYPES

TOKEN_HEADER = "X-Visitor-Token"  # noqa: S105 (a header name, not a secret)
TOKEN_PARAMETER = OpenApiParameter(
    TOKEN_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True, description="The signed visitor token."
)
ERRORS = {
    403: OpenApiResponse(description="Origin not allowed, or the visitor token is forged, expired or another's."),
    404: OpenApiResponse(description="No active chat channel with this public key."),
}


class WidgetApi(APIView):
    """The checks every widget endpoint shares: the channel, the Origin, and (``visitor_required``) the token."""

    authentication_classes = []
    permission_classes = [AllowAny]
    visitor_required = True

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # The Django request, not DRF's wrapper: the channel is remembered on it, where the CORS middleware looks.
        channel = chat_channel_for_request(request._request)
        if channel is None:
            raise NotFound("No such chat.", code="chat_not_found")
        if not origin_is_allowed(channel=channel, origin=request.headers.get("origin")):
            raise PermissionDenied("This site may not use this chat.", code="origin_not_allowed")
        self.channel = channel
        self.visitor = None
        if self.visitor_required:
            self.visitor = self.visitor_from_token(request.headers.get(TOKEN_HEADER, ""))

    def visitor_from_token(self, token: str) -> ChatVisitor:
        public_id = visitor_token_verify(token=token, channel=self.channel)
        visitor = chat_visitor_get(channel=self.channel, public_id=public_id) if public_id is not None else None
        if visitor is None:
            raise PermissionDenied("The visitor token is not valid here; start a new session.", code="invalid_token")
        return visitor

    def take_message_slot(self) -> None:
        wait = visitor_message_slot_take(visitor_public_id=self.visitor.public_id)
        if wait:
            raise Throttled(wait=wait, detail="You are sending messages too fast; wait a moment and try again.")


class ChatMessageSerializer(serializers.Serializer):
    class AttachmentSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChatAttachment"

        id = serializers.IntegerField()
        filename = serializers.CharField()
        content_type = serializers.CharField()
        size = serializers.IntegerField()
        url = serializers.URLField()

    id = serializers.IntegerField()
    ticket_id = serializers.IntegerField()
    direction = serializers.ChoiceField(choices=["inbound", "outbound"])
    text = serializers.CharField()
    created_at = serializers.DateTimeField()
    author_name = serializers.CharField()
    card = serializers.CharField(
        help_text="The purpose (notice, incident, survey) of a message the desk wrote first, shown as a card; "
        "empty for a conversation's messages.",
        allow_blank=True,
    )
    attachments = AttachmentSerializer(many=True)


class ConfigApi(WidgetApi):
    visitor_required = False

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChatConfig"

        name = serializers.CharField()
        color = serializers.CharField()
        greeting = serializers.CharField()
        texts = serializers.DictField(child=serializers.CharField())
        is_open = serializers.BooleanField(help_text="Within the channel's business hours.")
        agents_online = serializers.BooleanField()
        expected_reply_minutes = serializers.IntegerField(allow_null=True)
        pre_chat_form = serializers.BooleanField()
        max_message_chars = serializers.IntegerField()
        max_upload_bytes = serializers.IntegerField()
        offer_email = serializers.BooleanField(help_text="Closed or nobody online: offer to continue by email.")

    @extend_schema(responses={200: OutputSerializer, **ERRORS}, summary="Chat widget: configuration", tags=["chat"])
    def get(self, request, public_key: str):
        return Response(self.OutputSerializer(widget_config(channel=self.channel)).data)


class VisitorOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ChatVisitor"

    id = serializers.UUIDField(source="public_id", format="hex")
    name = serializers.CharField()
    email = serializers.CharField()
    is_verified = serializers.BooleanField()


class SessionApi(WidgetApi):
    visitor_required = False

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChatSessionInput"

        class IdentitySerializer(serializers.Serializer):
            class Meta:
                ref_name = "ChatIdentityInput"

            user_id = serializers.CharField(max_length=200)
            email = serializers.CharField(max_length=320, required=False, allow_blank=True)
            name = serializers.CharField(max_length=200, required=False, allow_blank=True)
            hmac = serializers.CharField(
                max_length=128, allow_blank=True, help_text="hex HMAC-SHA256(identity_secret, user_id)"
            )

        visitor_token = serializers.CharField(max_length=500, required=False, allow_blank=True)
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        email = serializers.CharField(max_length=320, required=False, allow_blank=True)
        identity = IdentitySerializer(required=False)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChatSession"

        visitor_token = serializers.CharField()
        visitor = VisitorOutputSerializer()

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OpenApiResponse(OutputSerializer, description="The visitor of the token, resumed."),
            201: OpenApiResponse(OutputSerializer, description="A new visitor."),
            **ERRORS,
        },
        summary="Chat widget: start or resume a visitor session",
        tags=["chat"],
    )
    def post(self, request, public_key: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        token = values.get("visitor_token") or request.headers.get(TOKEN_HEADER, "")
        current = self.visitor_from_token(token) if token else None
        identity = VisitorIdentity(**values["identity"]) if "identity" in values else None
        visitor, created = visitor_session_start(
            channel=self.channel,
            visitor=current,
            name=values.get("name", ""),
            email=values.get("email", ""),
            identity=identity,
            origin=request.headers.get("origin", ""),
            user_agent=request.headers.get("user-agent", ""),
        )
        body = {
            "visitor_token": visitor_token_sign(visitor_public_id=visitor.public_id, channel_id=self.channel.pk),
            "visitor": visitor,
        }
        return Response(
            self.OutputSerializer(body).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class MessageListCreateApi(WidgetApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChatMessageInput"

        client_id = serializers.CharField(max_length=100, help_text="The widget's id for this message (retry-safe).")
        text = serializers.CharField(trim_whitespace=False, help_text="At most CHAT_MAX_MESSAGE_CHARS characters.")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChatMessagePage"

        messages = ChatMessageSerializer(many=True)
        cursor = serializers.IntegerField(allow_null=True, help_text="Pass as ?after= for the next page.")

    @extend_schema(
        parameters=[
            TOKEN_PARAMETER,
            OpenApiParameter("after", OpenApiTypes.INT, description="Only messages after this message id."),
        ],
        responses={200: OutputSerializer, **ERRORS},
        summary="Chat widget: the visitor's conversation, oldest first, 100 at a time",
        tags=["chat"],
    )
    def get(self, request, public_key: str):
        after = request.query_params.get("after")
        if after is not None:
            after = ascii_int(after)
            if after is None:
                raise serializers.ValidationError({"after": ["A message id."]})
        messages = visitor_messages_page(visitor=self.visitor, after=after)
        body = {
            "messages": [chat_message_data(message=message, channel=self.channel) for message in messages],
            "cursor": messages[-1].pk if messages else after,
        }
        return Response(self.OutputSerializer(body).data)

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        request=InputSerializer,
        responses={
            200: OpenApiResponse(ChatMessageSerializer, description="Sent before (same client_id)."),
            201: ChatMessageSerializer,
            400: OpenApiResponse(description="Empty, or longer than CHAT_MAX_MESSAGE_CHARS."),
            429: OpenApiResponse(description="Too many messages from this visitor; see Retry-After."),
            503: OpenApiResponse(description="Stored but not yet taken in; send the same client_id again shortly."),
            **ERRORS,
        },
        summary="Chat widget: send a message",
        tags=["chat"],
    )
    def post(self, request, public_key: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        self.take_message_slot()
        message, created = visitor_message_post(visitor=self.visitor, **data.validated_data)
        return _message_response(message, channel=self.channel, created=created)


class AttachmentCreateApi(WidgetApi):
    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChatAttachmentInput"

        file = serializers.FileField(allow_empty_file=True)
        client_id = serializers.CharField(max_length=100)

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        request={"multipart/form-data": InputSerializer},
        responses={
            200: OpenApiResponse(ChatMessageSerializer, description="Sent before (same client_id)."),
            201: ChatMessageSerializer,
            400: OpenApiResponse(description="No file, or an empty one."),
            413: OpenApiResponse(description="Larger than CHAT_MAX_UPLOAD_BYTES."),
            429: OpenApiResponse(description="Too many messages from this visitor; see Retry-After."),
            503: OpenApiResponse(description="Stored but not yet taken in; send the same client_id again shortly."),
            **ERRORS,
        },
        summary="Chat widget: send a file",
        tags=["chat"],
    )
    def post(self, request, public_key: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        self.take_message_slot()
        message, created = visitor_attachment_post(visitor=self.visitor, **data.validated_data)
        return _message_response(message, channel=self.channel, created=created)


class AttachmentDownloadApi(WidgetApi):
    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file: raster images with their type, anything else as a download."
            ),
            **ERRORS,
        },
        summary="Chat widget: download a file of the visitor's conversation",
        tags=["chat"],
    )
    def get(self, request, public_key: str, attachment_id: int):
        attachment = visitor_attachment_get(visitor=self.visitor, attachment_id=attachment_id)
        content_type = attachment.content_type.split(";")[0].strip().lower()
        is_safe_image = content_type in SAFE_IMAGE_TYPES
        response = FileResponse(
            attachment.file.open("rb"),
            as_attachment=not is_safe_image,
            filename=attachment.filename.replace("\x00", "") or "attachment",
            content_type=content_type if is_safe_image else "application/octet-stream",
        )
        # As the agents' download: nothing a visitor uploaded can run as a page of our origin.
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response["Cache-Control"] = "private, no-store"
        return response


class ReadApi(WidgetApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChatReadInput"

        up_to = AsciiIntegerField(min_value=1, help_text="The newest message id the visitor has seen.")

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        request=InputSerializer,
        responses={204: None, **ERRORS},
        summary="Chat widget: the visitor has read up to a message",
        tags=["chat"],
    )
    def post(self, request, public_key: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        visitor_read_mark(visitor=self.visitor, up_to=data.validated_data["up_to"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeaveApi(WidgetApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChatLeaveInput"

        email = serializers.CharField(max_length=320, required=False, allow_blank=True)

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        request=InputSerializer,
        responses={204: None, **ERRORS},
        summary="Chat widget: the visitor leaves (later replies go by email when an address is known)",
        tags=["chat"],
    )
    def post(self, request, public_key: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        visitor_leave(visitor=self.visitor, email=data.validated_data.get("email", ""))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _message_response(message, *, channel, created: bool) -> Response:
    # The data is what ChatMessageSerializer describes (the schema) already: not copied through it again on the
    # widget's hottest path.
    body = chat_message_data(message=message, channel=channel)
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
