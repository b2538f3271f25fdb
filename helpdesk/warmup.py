"""Work a web server process does once, at start, instead of in its first requests.

Measured in a fresh process: the first task sent to the broker cost 90 ms of processor time (Celery's app finalised,
its result backend looked up through every installed package's entry points, the producer pool built), against
1.5 ms for the next; the first request to reach a view imported the views behind the URL conf. Under the GIL that
stalled every request and websocket of the process, not only the one that paid. Done here, before the ASGI module
freezes what it loaded out of the garbage collector's way (helpdesk/asgi.py). Nothing here touches the network:
a broker or database that is down at start must not stop the server from starting.
"""

import logging

from django.urls import get_resolver

logger = logging.getLogger(__name__)


def web_process_warm() -> None:
    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    try:
        from helpdesk.celery import app

        app.finalize(auto=True)
        app.backend  # noqa: B018 (the entry-point scan)
        app.amqp.router  # noqa: B018
        app.pool  # noqa: B018 (the producer pool; its connections open lazily)
    except Exception:  # a broken broker setting shows up where tasks are sent, as before; never here
        logger.warning("helpdesk.warmup_failed", exc_info=True)
