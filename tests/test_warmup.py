"""helpdesk.warmup: what a web server process does once at start instead of in its first requests."""

import os
import socket
import subprocess
import sys

from helpdesk.warmup import web_process_warm


def test_loading_the_web_application_warms_the_task_app_up():
    """In a fresh process (this one has sent tasks already): the ASGI module leaves Celery's app finalised with its
    producer pool built, which a process that only loaded Django does not have."""
    probe = "import {module}; from helpdesk.celery import app; print(app.finalized, app._pool is not None)"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "helpdesk.settings"}

    def run(module: str) -> str:
        completed = subprocess.run(
            [sys.executable, "-c", probe.format(module=module)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=True,
        )
        return completed.stdout.strip().splitlines()[-1]

    assert run("helpdesk.asgi") == "True True"
    assert run("django; django.setup(); import helpdesk.celery") == "False False"


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
