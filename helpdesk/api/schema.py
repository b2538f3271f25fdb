"""The OpenAPI schema says every answer an operation can give, errors included.

Every error of the API is ``{"detail": ...}`` (helpdesk/api/exceptions.py). Which errors an operation can answer
follows from what it is, so the schema class adds them to every operation instead of each view listing them:
400 (a malformed or invalid request), 401 (no or a bad token), 403 (not allowed); 404 where the path or the body
names an object; 409, 413 and 415 where a request body is sent. A view that documents one of these itself keeps its own
description; one documented without a body gets the error body.

A request body that needs at least one of several keys (a customer is found by external id, email or phone)
says so with ``schema_requires_one_of`` on its serializer: the schema gets ``anyOf: [{required: [key]}, ...]``,
so a generated request that the schema calls valid is not refused for that.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_patched_serializer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ERROR_DESCRIPTIONS = {
    "400": "Malformed or invalid request; `detail` says why (`errors` holds per-field messages).",
    "401": "No credentials, or a token that is invalid or revoked.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "No such object, or not one the caller may see.",
    "409": "The request conflicts with the object's current state.",
    "413": "The request body is over the limit.",
    "415": "The request body is not in the documented content type.",
}


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in a sentence.")
    code = serializers.CharField(required=False, help_text="A stable machine-readable reason, when there is one.")
    errors = serializers.JSONField(required=False, help_text="Invalid input: the messages per field.")

    class Meta:
        ref_name = "Error"


@extend_schema_field(OpenApiTypes.BYTE)
class Base64Field(serializers.CharField):
    """A string documented as base64 (``format: byte``); whoever reads it decodes and validates it."""


@extend_schema_field({"type": "object", "additionalProperties": {}})
class JsonObjectField(serializers.JSONField):
    """A JSON value documented as an object, for fields whose validation accepts only objects."""


class HelpdeskAutoSchema(AutoSchema):
    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        keys = getattr(serializer, "schema_requires_one_of", ())
        if keys and direction == "request" and not is_patched_serializer(serializer, direction):
            schema["anyOf"] = [{"required": [key]} for key in keys]
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._error_response(code, ERROR_DESCRIPTIONS[code], direction)
            elif "content" not in responses[code]:
                responses[code] = self._error_response(code, responses[code].get("description", ""), direction)
        for code, response in list(responses.items()):
            if code >= "400" and "content" not in response:
                responses[code] = self._error_response(code, response.get("description", ""), direction)
        return dict(sorted(responses.items()))

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403"]
        # 404 also for a body naming an object that does not exist (a channel_id, a team)
        if "{" in self.path or self.method in UNSAFE_METHODS:
            codes.append("404")
        if self.method in UNSAFE_METHODS:
            codes.extend(["409", "413", "415"])
        return codes

    def _error_response(self, code: str, description: str, direction) -> dict:
        return self._get_response_for_code(
            OpenApiResponse(ErrorSerializer, description=description or ERROR_DESCRIPTIONS.get(code, "")),
            code,
            direction=direction,
        )
