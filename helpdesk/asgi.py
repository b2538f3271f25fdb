"""ASGI entry point: Django's views over HTTP, the consumers (helpdesk/routing.py) over websockets.

uvicorn helpdesk.asgi:application
"""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
# The web server borrows PostgreSQL connections from a pool unless told otherwise (DATABASE_POOL in settings.py).
os.environ.setdefault("DATABASE_POOL", "true")
# First: Django is set up, which the consumers' imports (models) need. What get_asgi_application() does, with the
# handler that runs a request's middleware and view in one hop to a thread (helpdesk/asgi_handler.py).
django.setup(set_prefix=False)

from helpdesk.staticfiles import static_files_collect_if_stale  # noqa: E402

# Before the handler builds its middleware: WhiteNoise indexes STATIC_ROOT once, when it is created.
static_files_collect_if_stale()

from helpdesk.asgi_handler import SyncChainASGIHandler  # noqa: E402

django_asgi_app = SyncChainASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from helpdesk.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The session (cookie) identifies agents; visitors carry their token in the URL instead.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)

# What the process's first requests would otherwise pay for, under the GIL of every request and websocket.
from helpdesk.warmup import web_process_warm  # noqa: E402

web_process_warm()

# Everything loaded so far (Django, the apps, the URL conf) lives as long as the process: frozen out of the garbage
# collector's reach, so its full collections, which pause every request and websocket of the process, stop
# walking it again and again.
gc.freeze()
