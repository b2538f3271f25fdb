from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from helpdesk.errors import DomainError


class NewestFirstCursorPagination(CursorPagination):
    """Keyset pagination on the primary key: stable under inserts and as fast on page 1,000 as on page 1.

    A cursor that is not one this API wrote is a bad request (400), not DRF's 404 for a page that does not exist,
    and its position must be an id: DRF passes it to the query as it is, so ``p=abc`` was a 500."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    invalid_cursor_message = "Invalid cursor: pass the next or previous link of a page as it is."

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise DomainError(self.invalid_cursor_message, code="invalid_cursor") from exc
        position = cursor.position if cursor is not None else None
        if position is not None and not (position.isascii() and position.isdigit()):
            raise DomainError(self.invalid_cursor_message, code="invalid_cursor")
        return cursor
