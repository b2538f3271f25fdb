"""Console routes: tickets (names are in the "console" namespace)."""

from django.urls import path

from console.views import ticket

urlpatterns: list = [
    path("tickets/<int:ticket_id>/", ticket.ticket_detail, name="ticket"),
    path("tickets/<int:ticket_id>/reply/", ticket.ticket_reply, name="ticket-reply"),
    path("tickets/<int:ticket_id>/note/", ticket.ticket_note, name="ticket-note"),
    path("tickets/<int:ticket_id>/update/", ticket.ticket_update_view, name="ticket-update"),
    path("tickets/<int:ticket_id>/merge/", ticket.ticket_merge_view, name="ticket-merge"),
]
