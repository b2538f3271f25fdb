"""helpdesk.warmup: what a web server process does once at start instead of in its first requests."""

import socket

from helpdesk.celery import app
from helpdesk.warmup import web_process_warm


def test_the_task_app_and_the_views_are_ready_after_the_warm_up():
    web_process_warm()

    assert app.finalized
    assert "tickets.route_ticket" in app.tasks
    assert app.pool is not None  # the producer pool exists; its connections open on first use


def test_the_warm_up_opens_no_connection(monkeypatch):
    """A broker or database that is down at start must not stop the server from starting."""
    opened = []

    def refuse(*args, **kwargs):
        opened.append(args)
        raise OSError("no network during the warm-up")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)

    web_process_warm()

    assert opened == []
