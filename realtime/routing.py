"""Websocket URLs (helpdesk/asgi.py mounts them behind the session middleware)."""

from django.urls import path

from chat.consumers import VisitorConsumer
from realtime.consumers import AgentConsumer

websocket_urlpatterns = [
    path("ws/agent/", AgentConsumer.as_asgi(), name="ws-agent"),
    path("chat/ws/<str:public_key>/", VisitorConsumer.as_asgi(), name="ws-chat-visitor"),
]
