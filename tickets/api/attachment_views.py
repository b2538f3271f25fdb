"""Downloading a stored attachment.

Whatever a sender attached is served so that it can never run as a page of our origin: only raster images keep
their type (and display inline, for ``cid:`` images in message HTML); everything else, SVG and HTML included, is
an ``application/octet-stream`` download, with ``nosniff`` and a ``sandbox`` CSP as a second line of defence.
"""

import re

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from tickets.selectors.attachments import attachment_get_for_agent

SAFE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")


class AttachmentDownloadApi(APIView):
    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The file. Raster images (PNG, JPEG, GIF, WebP) come with their own type, inline; "
                "anything else as application/octet-stream, as an attachment.",
            ),
        },
        summary="Download an attachment of a ticket the agent may see",
    )
    def get(self, request, attachment_id: int):
        attachment = attachment_get_for_agent(user=request.user, attachment_id=attachment_id)
        content_type = attachment.content_type.split(";")[0].strip().lower()
        is_safe_image = content_type in SAFE_IMAGE_TYPES
        response = FileResponse(
            attachment.file.open("rb"),
            as_attachment=not is_safe_image,
            filename=_CONTROL_CHARACTERS.sub("", attachment.filename) or "attachment",
            content_type=content_type if is_safe_image else "application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response["Cross-Origin-Resource-Policy"] = "same-origin"
        response["Cache-Control"] = "private, max-age=3600"
        return response
