"""WSGI entry point (for a WSGI server such as gunicorn; the product runs under ASGI, helpdesk/asgi.py)."""

import os

import django
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
django.setup(set_prefix=False)

from helpdesk.staticfiles import static_files_collect_if_stale  # noqa: E402

# Before the handler builds its middleware: WhiteNoise indexes STATIC_ROOT once, when it is created.
static_files_collect_if_stale()

application = WSGIHandler()
