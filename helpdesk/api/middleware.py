"""What every request passes before a view reads it: oversized bodies are refused with 413 before anything reads
them, and query strings are made storable (``helpdesk.text``)."""

import json

from django.conf import settings
from django.http import HttpResponse, QueryDict
from django.urls import Resolver404, resolve

from helpdesk.text import storable_text

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


class StorableQueryStringMiddleware:
    """``request.GET`` with NUL removed from names and values, for every view: ``?q=%00`` reached PostgreSQL as a
    search term and answered 500. (Django decodes a query string with replacement characters, so a lone surrogate
    cannot come this way; signature checks read the query string itself, which is left as sent.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            cleaned = QueryDict(mutable=True)
            for name, values in request.GET.lists():
                cleaned.setlist(storable_text(name), [storable_text(value) for value in values])
            cleaned._mutable = False
            request.GET = cleaned
        return self.get_response(request)
