"""Every websocket URL of the desk (helpdesk/asgi.py mounts them behind the session middleware): the agents'
(``realtime``) and the chat widget's (``chat``), composed here so that neither app imports the other's consumer."""

from chat.routing import websocket_urlpatterns as chat_urlpatterns
from realtime.routing import websocket_urlpatterns as realtime_urlpatterns

websocket_urlpatterns = [*realtime_urlpatterns, *chat_urlpatterns]
