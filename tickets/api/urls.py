from django.urls import path

from tickets.api import views
from tickets.api.attachment_views import AttachmentDownloadApi

urlpatterns = [
    path("tickets", views.TicketListApi.as_view(), name="ticket-list"),
    path("tickets/<int:ticket_id>", views.TicketDetailApi.as_view(), name="ticket-detail"),
    path("tickets/<int:ticket_id>/messages", views.TicketMessageListApi.as_view(), name="ticket-messages"),
    path("tickets/<int:ticket_id>/replies", views.TicketReplyCreateApi.as_view(), name="ticket-replies"),
    path("tickets/<int:ticket_id>/notes", views.TicketNoteCreateApi.as_view(), name="ticket-notes"),
    path("attachments/<int:attachment_id>", AttachmentDownloadApi.as_view(), name="attachment-download"),
]
