from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import user_is_agent
from customers.selectors import customer_get
from helpdesk.api.permissions import CanReadCustomers, IsAgent
from helpdesk.errors import DomainError
from helpdesk.text import ascii_int
from tickets.api.serializers import MessageOutputSerializer, TimelineEventOutputSerializer
from tickets.selectors.timeline import customer_timeline


class ContextEventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    payload = serializers.JSONField()
    occurred_at = serializers.DateTimeField()
    source = serializers.CharField()


_SERIALIZERS = {
    "message": MessageOutputSerializer,
    "event": TimelineEventOutputSerializer,
    "context": ContextEventOutputSerializer,
}


class CustomerTimelineApi(APIView):
    """Everything about one customer, newest first: messages on every channel and ticket, the changes made to
    their tickets, and what the company's systems told us they did."""

    permission_classes = [IsAgent | CanReadCustomers]

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", str, description="The next_cursor of the previous page."),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                description="Entries per page.",
            ),
        ],
        responses=inline_serializer(
            name="TimelinePage",
            fields={
                "results": serializers.ListField(
                    child=inline_serializer(
                        name="TimelineEntry",
                        fields={
                            "kind": serializers.ChoiceField(choices=["message", "event", "context"]),
                            "at": serializers.DateTimeField(),
                            "message": MessageOutputSerializer(required=False),
                            "event": TimelineEventOutputSerializer(required=False),
                            "context": ContextEventOutputSerializer(required=False),
                        },
                    )
                ),
                "next_cursor": serializers.CharField(allow_null=True),
            },
        ),
        summary="A customer's timeline across channels and tickets",
    )
    def get(self, request, customer_id: int):
        customer = customer_get(customer_id=customer_id, with_identities=False)
        limit = ascii_int(request.query_params.get("limit", 50), is_signed=True)
        if limit is None:
            raise DomainError("limit must be a number.")
        if not 1 <= limit <= 200:
            raise DomainError("limit must be between 1 and 200.")
        is_agent = user_is_agent(request.user)
        page = customer_timeline(
            customer=customer,
            viewer=request.user if is_agent else None,
            cursor=request.query_params.get("cursor") or None,
            limit=limit,
            # Internal notes are for agents, not for the company's other systems.
            include_notes=is_agent,
        )
        results = [
            {"kind": entry.kind, "at": entry.at, entry.kind: _SERIALIZERS[entry.kind](entry.item).data}
            for entry in page.entries
        ]
        return Response({"results": results, "next_cursor": page.next_cursor})
