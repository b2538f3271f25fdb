"""Ticket endpoints for agents: list, read, change, reply, note."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.models import Channel
from helpdesk.api.fields import AsciiIntegerField
from helpdesk.api.pagination import NewestFirstCursorPagination
from helpdesk.errors import DomainError, NotFound
from helpdesk.text import ascii_int
from tickets.api.serializers import MessageOutputSerializer, TicketOutputSerializer
from tickets.models import Ticket
from tickets.selectors.tickets import ticket_get_for_agent, ticket_list_for_agent, ticket_messages
from tickets.services.replies import MAX_REPLY_CC, note_create, reply_create
from tickets.services.updates import UNSET, TicketChanges, ticket_update
from timeline.types import Actor


class TicketListApi(APIView):
    pagination_class = NewestFirstCursorPagination  # also what the schema documents: {next, previous, results}

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Ticket.Status.values),
            OpenApiParameter("customer", {"type": "integer", "minimum": 1}, description="Only this customer's."),
        ],
        responses=TicketOutputSerializer(many=True),
        summary="Tickets the agent may see, newest first",
    )
    def get(self, request):
        status_filter = request.query_params.get("status") or None
        if status_filter and status_filter not in Ticket.Status.values:
            raise DomainError(f"status must be one of {', '.join(Ticket.Status.values)}.")
        customer = request.query_params.get("customer")
        customer_id = ascii_int(customer) if customer else None
        if customer and customer_id is None:
            raise DomainError("customer must be an id.")
        tickets = ticket_list_for_agent(user=request.user, status=status_filter, customer_id=customer_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(tickets.order_by("-id"), request, view=self)
        return paginator.get_paginated_response(TicketOutputSerializer(page, many=True).data)


class TicketUpdateInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, required=False)
    team_id = AsciiIntegerField(required=False, allow_null=True)
    assignee_id = AsciiIntegerField(required=False, allow_null=True)
    subject = serializers.CharField(max_length=500, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=50)
    version = AsciiIntegerField(
        required=False, help_text="The version you loaded; if the ticket changed since, you get 409."
    )


class TicketDetailApi(APIView):
    @extend_schema(responses=TicketOutputSerializer, summary="Get a ticket")
    def get(self, request, ticket_id: int):
        return Response(TicketOutputSerializer(ticket_get_for_agent(user=request.user, ticket_id=ticket_id)).data)

    @extend_schema(request=TicketUpdateInputSerializer, responses=TicketOutputSerializer, summary="Change a ticket")
    def patch(self, request, ticket_id: int):
        ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket_id)
        data = TicketUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        changes = TicketChanges(
            **{
                key: values.get(key, UNSET)
                for key in ("status", "priority", "team_id", "assignee_id", "subject", "tags")
            }
        )
        ticket = ticket_update(
            ticket=ticket,
            actor=Actor.agent(request.user),
            changes=changes,
            expected_version=values.get("version"),
        )
        # The ticket as changed, not re-read through the agent's visibility: handing it over to another team is
        # a change made, not a 404.
        return Response(TicketOutputSerializer(ticket).data)


class TicketMessageListApi(APIView):
    @extend_schema(responses=MessageOutputSerializer(many=True), summary="A ticket's messages, oldest first")
    def get(self, request, ticket_id: int):
        ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket_id)
        return Response(MessageOutputSerializer(ticket_messages(ticket=ticket), many=True).data)


class ReplyInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=100_000, required=False, allow_blank=True, default="")
    html = serializers.CharField(max_length=200_000, required=False, allow_blank=True, default="")
    channel_id = AsciiIntegerField(required=False, help_text="Default: the channel the customer last used.")
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False, help_text="Set after replying.")
    idempotency_key = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    cc = serializers.ListField(
        child=serializers.CharField(max_length=254),
        required=False,
        default=list,
        max_length=MAX_REPLY_CC,
        help_text="Email only: further addresses to copy; they become participants of the ticket.",
    )


class TicketReplyCreateApi(APIView):
    @extend_schema(
        request=ReplyInputSerializer,
        responses={201: MessageOutputSerializer},
        summary="Reply to the customer",
    )
    def post(self, request, ticket_id: int):
        ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket_id)
        data = ReplyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        channel = None
        if "channel_id" in values:
            channel = Channel.objects.filter(pk=values["channel_id"]).first()
            if channel is None:
                raise NotFound("No such channel.")
        key = values["idempotency_key"] or request.headers.get("Idempotency-Key", "")[:100]
        message = reply_create(
            ticket=ticket,
            author=request.user,
            text=values["text"],
            html=values["html"],
            channel=channel,
            status=values.get("status"),
            idempotency_key=key,
            cc=values["cc"],
        )
        message = ticket_messages(ticket=ticket).get(pk=message.pk)
        return Response(MessageOutputSerializer(message).data, status=status.HTTP_201_CREATED)


class NoteInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=100_000)
    idempotency_key = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class TicketNoteCreateApi(APIView):
    @extend_schema(
        request=NoteInputSerializer, responses={201: MessageOutputSerializer}, summary="Add an internal note"
    )
    def post(self, request, ticket_id: int):
        ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket_id)
        data = NoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = data.validated_data["idempotency_key"] or request.headers.get("Idempotency-Key", "")[:100]
        message = note_create(ticket=ticket, author=request.user, text=data.validated_data["text"], idempotency_key=key)
        message = ticket_messages(ticket=ticket).get(pk=message.pk)
        return Response(MessageOutputSerializer(message).data, status=status.HTTP_201_CREATED)
