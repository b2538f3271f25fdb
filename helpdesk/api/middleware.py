"""Refuse oversized request bodies with 413 before anything reads them."""

import json

from django.conf import settings
from django.http import HttpResponse
from django.urls import Resolver404, resolve

# Django's own default for DATA_UPLOAD_MAX_MEMORY_SIZE.
FORM_MAX_BODY_BYTES = 2_621_440


class ApiBodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        # The chat widget's API takes visitors' files (CHAT_MAX_UPLOAD_BYTES) under the API's cap, not the form cap.
        if request.path.startswith(("/api/", "/inbound/", "/chat/api/")):
            limit = settings.API_MAX_BODY_BYTES
            if length > limit:
                limit = getattr(settings, _body_limit_setting(request.path_info))
        else:
            # DATA_UPLOAD_MAX_MEMORY_SIZE is raised for the email webhooks' form posts; every other page (the admin,
            # the login form) keeps Django's default cap.
            limit = FORM_MAX_BODY_BYTES
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
