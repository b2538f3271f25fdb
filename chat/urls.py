"""Mounted at /chat/: the widget's REST API (``api/<public_key>/...``) and, with DEBUG, a demo host page."""

from django.urls import path

from chat.api.views import (
    AttachmentCreateApi,
    AttachmentDownloadApi,
    ConfigApi,
    LeaveApi,
    MessageListCreateApi,
    ReadApi,
    SessionApi,
)
from chat.views.demo import chat_demo

app_name = "chat"

urlpatterns = [
    path("api/<str:public_key>/config", ConfigApi.as_view(), name="widget-config"),
    path("api/<str:public_key>/session", SessionApi.as_view(), name="widget-session"),
    path("api/<str:public_key>/messages", MessageListCreateApi.as_view(), name="widget-messages"),
    path("api/<str:public_key>/attachments", AttachmentCreateApi.as_view(), name="widget-attachments"),
    path(
        "api/<str:public_key>/attachments/<int:attachment_id>",
        AttachmentDownloadApi.as_view(),
        name="attachment-download",
    ),
    path("api/<str:public_key>/read", ReadApi.as_view(), name="widget-read"),
    path("api/<str:public_key>/leave", LeaveApi.as_view(), name="widget-leave"),
    # A page hosting the widget, for trying a channel out (DEBUG only; the desk's origin must be allowed).
    path("demo/<str:public_key>/", chat_demo, name="widget-demo"),
]
