"""Refuse oversized API bodies with 413 before anything reads them."""

import json

from django.conf import settings
from django.http import HttpResponse


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
                body = json.dumps({"detail": f"Request body is {length} bytes; the limit is {limit}."})
                return HttpResponse(body, status=413, content_type="application/json")
        return self.get_response(request)
