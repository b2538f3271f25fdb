"""ASGI entry point: Django's views over HTTP, the consumers (realtime/routing.py) over websockets.

uvicorn helpdesk.asgi:application
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
# First: it sets Django up, which the consumers' imports (models) need.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The session (cookie) identifies agents; visitors carry their token in the URL instead.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
