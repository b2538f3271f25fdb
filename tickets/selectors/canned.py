"""Reads of canned responses for the settings pages (the ticket page's picker is in ``ticket_page``)."""

from django.db.models import QuerySet

from helpdesk.errors import NotFound
from tickets.models import CannedResponse


def canned_response_list() -> QuerySet[CannedResponse]:
    return CannedResponse.objects.select_related("team", "created_by").order_by("-is_active", "title", "id")


def canned_response_get(*, canned_id: int) -> CannedResponse:
    canned = CannedResponse.objects.select_related("team").filter(pk=canned_id).first()
    if canned is None:
        raise NotFound("No such canned response.")
    return canned
