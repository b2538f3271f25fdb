"""The chat widget's websocket URL (``helpdesk/routing.py`` mounts it with the agents')."""

from django.urls import path

from chat.consumers import VisitorConsumer

websocket_urlpatterns = [
    path("chat/ws/<str:public_key>/", VisitorConsumer.as_asgi(), name="ws-chat-visitor"),
]
