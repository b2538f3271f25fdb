"""Output shapes shared by the ticket and timeline endpoints."""

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from tickets.models import Attachment, Message, Ticket
from timeline.models import TimelineEvent


class AttachmentOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attachment
        fields = ["id", "filename", "content_type", "size", "sha256", "content_id"]


_REF = inline_serializer(
    name="Ref", fields={"id": serializers.IntegerField(), "name": serializers.CharField(required=False)}
)
# Null when there is none: a note has no channel; an inbound message, a system event, no author.
_CHANNEL_REF = inline_serializer(
    name="ChannelRef",
    fields={
        "id": serializers.IntegerField(),
        "kind": serializers.CharField(),
        "name": serializers.CharField(),
    },
    allow_null=True,
)
_USER_REF = inline_serializer(
    name="UserRef", fields={"id": serializers.IntegerField(), "username": serializers.CharField()}, allow_null=True
)


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    recipient = serializers.CharField()
    error_code = serializers.CharField()
    error = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)


class MediaOutputSerializer(serializers.Serializer):
    """A media file an inbound message refers to (MMS): where fetching it stands, and its attachment once stored."""

    index = serializers.IntegerField()
    content_type = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField()
    attachment_id = serializers.IntegerField(allow_null=True)


class MessageOutputSerializer(serializers.ModelSerializer):
    channel = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField()
    attachments = AttachmentOutputSerializer(many=True, read_only=True)
    media = serializers.SerializerMethodField()
    delivery = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "ticket_id",
            "customer_id",
            "direction",
            "channel",
            "author",
            "subject",
            "text",
            "html",
            "provider_id",
            "attachments",
            "media",
            "delivery",
            "sent_at",
            "created_at",
        ]

    @extend_schema_field(_CHANNEL_REF)
    def get_channel(self, message: Message):
        if message.channel is None:
            return None
        return {"id": message.channel.pk, "kind": message.channel.kind, "name": message.channel.name}

    @extend_schema_field(_USER_REF)
    def get_author(self, message: Message):
        if message.author is None:
            return None
        return {"id": message.author.pk, "username": message.author.get_username()}

    @extend_schema_field(MediaOutputSerializer(many=True))
    def get_media(self, message: Message):
        # Only inbound messages carry media by URL; asking the others would cost a query each.
        if message.direction != Message.Direction.INBOUND:
            return []
        media = sorted(message.media.all(), key=lambda item: item.index)  # prefetched by the message selectors
        return MediaOutputSerializer(media, many=True).data

    @extend_schema_field(DeliveryOutputSerializer(allow_null=True))
    def get_delivery(self, message: Message):
        if message.direction != Message.Direction.OUTBOUND:
            return None
        delivery = getattr(message, "delivery", None)
        return DeliveryOutputSerializer(delivery).data if delivery else None


class TimelineEventOutputSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = TimelineEvent
        fields = ["id", "ticket_id", "type", "actor_kind", "actor", "params", "created_at"]

    @extend_schema_field(_USER_REF)
    def get_actor(self, event: TimelineEvent):
        if event.actor is None:
            return None
        return {"id": event.actor.pk, "username": event.actor.get_username()}


class TicketOutputSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()
    customer = serializers.SerializerMethodField()
    channel = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "subject",
            "status",
            "priority",
            "customer",
            "team_id",
            "assignee_id",
            "tags",
            "channel",
            "follow_up_of_id",
            "version",
            "created_at",
            "updated_at",
            "first_response_at",
            "solved_at",
            "last_message_at",
        ]

    def get_tags(self, ticket: Ticket) -> list[str]:
        return sorted(tag.name for tag in ticket.tags.all())

    @extend_schema_field(_REF)
    def get_customer(self, ticket: Ticket):
        return {"id": ticket.customer_id, "name": ticket.customer.name}

    @extend_schema_field(_CHANNEL_REF)
    def get_channel(self, ticket: Ticket):
        if ticket.channel is None:
            return None
        return {"id": ticket.channel.pk, "kind": ticket.channel.kind, "name": ticket.channel.name}
