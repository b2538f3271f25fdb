"""Customer endpoints: agents read; the company's systems upsert customers and post context events."""

import json
import zoneinfo

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.identities import normalise_identity
from customers.models import ContextEvent, Customer, CustomerIdentity
from customers.selectors import customer_get, customer_list
from customers.services import context_event_record, customer_upsert
from customers.types import IdentityInput
from helpdesk.api.pagination import NewestFirstCursorPagination
from helpdesk.api.permissions import CanReadCustomers, CanWriteCustomers, IsAdmin, IsAgent
from helpdesk.api.schema import JsonObjectField

MAX_ATTRIBUTES_BYTES = 32 * 1024
MAX_CONTEXT_PAYLOAD_BYTES = 64 * 1024


class IdentityOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomerIdentity
        fields = ["kind", "value", "is_verified", "is_primary"]


class CustomerOutputSerializer(serializers.ModelSerializer):
    identities = IdentityOutputSerializer(many=True, read_only=True)
    last_channel_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "public_id",
            "name",
            "locale",
            "time_zone",
            "company",
            "plan",
            "lifetime_value",
            "attributes",
            "identities",
            "last_channel_id",
            "last_seen_at",
            "created_at",
            "updated_at",
        ]


def _json_size(value) -> int:
    return len(json.dumps(value, default=str))


@extend_schema_field(OpenApiTypes.EMAIL)
class _EmailIdentityField(serializers.CharField):
    """Documented as an email address; ``normalise_identity`` validates it, saying why when it is not one."""


class CustomerUpsertInputSerializer(serializers.Serializer):
    schema_requires_one_of = ("external_id", "email", "phone")

    external_id = serializers.CharField(max_length=320, required=False)
    email = _EmailIdentityField(max_length=320, required=False)
    phone = serializers.CharField(max_length=64, required=False)
    email_verified = serializers.BooleanField(required=False, default=True)
    phone_verified = serializers.BooleanField(required=False, default=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=35, required=False, allow_blank=True)
    time_zone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    company = serializers.CharField(max_length=200, required=False, allow_blank=True)
    plan = serializers.CharField(max_length=100, required=False, allow_blank=True)
    lifetime_value = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True)
    attributes = serializers.DictField(required=False)

    def validate_time_zone(self, value):
        if value and value not in zoneinfo.available_timezones():
            raise serializers.ValidationError("Not an IANA time zone name.")
        return value

    def validate_attributes(self, value):
        if _json_size(value) > MAX_ATTRIBUTES_BYTES:
            raise serializers.ValidationError(f"Attributes are limited to {MAX_ATTRIBUTES_BYTES} bytes of JSON.")
        return value

    def validate(self, attrs):
        identities = []
        for field, kind, verified_field in (
            ("external_id", CustomerIdentity.Kind.EXTERNAL, None),
            ("email", CustomerIdentity.Kind.EMAIL, "email_verified"),
            ("phone", CustomerIdentity.Kind.PHONE, "phone_verified"),
        ):
            if attrs.get(field):
                try:
                    value = normalise_identity(kind, attrs[field])
                except ValueError as exc:
                    raise serializers.ValidationError({field: str(exc)}) from exc
                verified = True if verified_field is None else attrs.get(verified_field, True)
                identities.append(IdentityInput(kind=kind, value=value, is_verified=verified))
        if not identities:
            raise serializers.ValidationError("Give at least one of external_id, email, phone.")
        attrs["identities"] = identities
        return attrs


class CustomerListUpsertApi(APIView):
    pagination_class = NewestFirstCursorPagination  # also what the schema documents for GET

    def get_permissions(self):
        if self.request.method == "POST":
            return [(CanWriteCustomers | IsAdmin)()]
        return [(IsAgent | CanReadCustomers)()]

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Search name and identities.")],
        responses=CustomerOutputSerializer(many=True),
        summary="List or search customers",
    )
    def get(self, request):
        customers = customer_list(query=request.query_params.get("q", "").strip()[:200])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(customers, request, view=self)
        return paginator.get_paginated_response(CustomerOutputSerializer(page, many=True).data)

    @extend_schema(
        request=CustomerUpsertInputSerializer,
        responses={200: CustomerOutputSerializer, 201: CustomerOutputSerializer},
        summary="Create or update a customer by external id, email or phone",
    )
    def post(self, request):
        data = CustomerUpsertInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        profile = {
            key: values[key]
            for key in ("name", "locale", "time_zone", "company", "plan", "lifetime_value")
            if key in values
        }
        customer, created = customer_upsert(
            identities=values["identities"], profile=profile, attributes=values.get("attributes")
        )
        customer = customer_get(customer_id=customer.pk)
        return Response(
            CustomerOutputSerializer(customer).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class CustomerDetailApi(APIView):
    permission_classes = [IsAgent | CanReadCustomers]

    @extend_schema(responses=CustomerOutputSerializer, summary="Get a customer")
    def get(self, request, customer_id: int):
        return Response(CustomerOutputSerializer(customer_get(customer_id=customer_id)).data)


class ContextEventSerializer(serializers.ModelSerializer):
    payload = JsonObjectField(required=False)

    class Meta:
        model = ContextEvent
        fields = ["id", "type", "payload", "occurred_at", "external_id", "source", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {
            "occurred_at": {"required": False},
            "external_id": {"required": False},
            "source": {"required": False},
        }

    def validate_payload(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("The payload must be a JSON object.")
        if _json_size(value) > MAX_CONTEXT_PAYLOAD_BYTES:
            raise serializers.ValidationError(f"The payload is limited to {MAX_CONTEXT_PAYLOAD_BYTES} bytes of JSON.")
        return value


class CustomerContextEventCreateApi(APIView):
    permission_classes = [CanWriteCustomers | IsAdmin]

    @extend_schema(
        request=ContextEventSerializer,
        responses={201: ContextEventSerializer, 200: ContextEventSerializer},
        summary="Record something the customer did (order, cart, plan change...)",
    )
    def post(self, request, customer_id: int):
        customer = customer_get(customer_id=customer_id)
        data = ContextEventSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        event, created = context_event_record(
            customer=customer,
            type=values["type"],
            payload=values.get("payload") or {},
            occurred_at=values.get("occurred_at") or timezone.now(),
            external_id=values.get("external_id", ""),
            source=values.get("source", ""),
        )
        return Response(
            ContextEventSerializer(event).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
