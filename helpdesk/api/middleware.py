"""Refuse oversized API bodies with 413 before anything reads them."""

import json

from django.conf import settings
from django.http import HttpResponse
from django.urls import Resolver404, resolve


class ApiBodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit = settings.API_MAX_BODY_BYTES
            if length > limit:
                limit = getattr(settings, _body_limit_setting(request.path_info))
            if length > limit:
                body = json.dumps({"detail": f"Request body is {length} bytes; the limit is {limit}."})
                return HttpResponse(body, status=413, content_type="application/json")
        return self.get_response(request)


def _body_limit_setting(path: str) -> str:
    """A view may name a larger limit (``body_limit_setting``): raw email is allowed up to the email cap."""
    try:
        view = resolve(path).func
    except Resolver404:
        return "API_MAX_BODY_BYTES"
    return getattr(getattr(view, "view_class", None), "body_limit_setting", "API_MAX_BODY_BYTES")
