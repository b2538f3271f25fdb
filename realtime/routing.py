"""The agents' websocket URL (``helpdesk/routing.py`` mounts it with the other apps' websocket URLs)."""

from django.urls import path

from realtime.consumers import AgentConsumer

websocket_urlpatterns = [
    path("ws/agent/", AgentConsumer.as_asgi(), name="ws-agent"),
]
