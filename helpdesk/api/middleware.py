"""What every request passes before a view reads it: oversized bodies are refused with 413 before anything reads
them, and a URL's NUL characters never reach PostgreSQL (``helpdesk.text``)."""

import json

from django.conf import settings
from django.http import Http404, HttpResponse, QueryDict
from django.urls import Resolver404, resolve

from helpdesk.text import storable_text

# Where programs (integrations, providers, the chat widget's script) call: answered in JSON.
MACHINE_PATHS = ("/api/", "/inbound/", "/chat/api/")
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
        if request.path.startswith(MACHINE_PATHS):
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


class StorableUrlMiddleware:
    """NUL in a URL, which PostgreSQL cannot compare with text: ``?q=%00`` reached the customer search and
    ``/inbound/sms/twilio/%00/`` the channel lookup, each a 500.

    - In the path, it is a 404: no key or id we issue holds one, so no resource has that name.
    - In the query string, it is removed from ``request.GET`` (names and values) for every view, as text is
      everywhere else. Django decodes a query string with replacement characters, so a lone surrogate cannot come
      this way; signature checks read the query string itself, which is left as sent."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path_info:
            if request.path_info.startswith(MACHINE_PATHS):
                return HttpResponse(json.dumps({"detail": "Not found."}), status=404, content_type="application/json")
            raise Http404("No such page.")
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            cleaned = QueryDict(mutable=True)
            for name, values in request.GET.lists():
                cleaned.setlist(storable_text(name), [storable_text(value) for value in values])
            cleaned._mutable = False
            request.GET = cleaned
        return self.get_response(request)
