"""A real Celery worker, out of process, on the Redis broker and the regular settings, processes what the API stored.

Everything else in the suite runs tasks eagerly; this test proves the deployed shape: the web process commits the
raw event and enqueues its id on Redis, a separate worker process picks it up from the broker, reads the committed
row from the (test) database and writes the message.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import connection

from channels_app.models import InboundEvent
from channels_app.tasks.inbound import process_inbound_event
from tests.conftest import services_or_skip
from tickets.models import Message, Ticket

pytestmark = pytest.mark.services

BASE_DIR = Path(settings.BASE_DIR)
WAIT_SECONDS = 60


def database_url_of_this_test() -> str:
    """A DATABASE_URL naming the database this test runs on (the test database, not the configured one)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        credentials = quote(db["USER"] or "", safe="")
        if db["PASSWORD"]:
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db["HOST"] or "localhost"
        port = f":{db['PORT']}" if db["PORT"] else ""
        return f"postgresql://{credentials}@{host}{port}/{db['NAME']}"
    pytest.fail(f"no DATABASE_URL for engine {db['ENGINE']}")


def start_worker(*, queue: str, broker_url: str, log_path: Path) -> subprocess.Popen:
    env = dict(os.environ)
    # The real settings, as deployed, with the test database and the test's own queue on the Redis broker.
    env["DJANGO_SETTINGS_MODULE"] = "helpdesk.settings"
    env["DATABASE_URL"] = database_url_of_this_test()
    env["CELERY_BROKER_URL"] = broker_url
    # helpdesk.settings_test sets this in the test process's environment; the worker must not run tasks eagerly.
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "helpdesk",
        "worker",
        "--pool",
        "solo",
        "-Q",
        queue,
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "INFO",
        "--hostname",
        f"{queue}@%h",
    ]
    log = log_path.open("wb")
    return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)


def take_route_ticket_message(client: redis.Redis, ticket_id: int) -> bool:
    """Remove the routing task the worker enqueued for ``ticket_id`` on the default queue; whether it was there.

    Nothing consumes the default queue in this test, so the message is taken away rather than left behind."""
    for raw in client.lrange("celery", 0, -1):
        message = json.loads(raw)
        headers = message.get("headers", {})
        if headers.get("task") == "tickets.route_ticket" and headers.get("argsrepr") == f"({ticket_id},)":
            client.lrem("celery", 1, raw)
            return True
    return False


def test_worker_out_of_process_processes_an_event_the_api_stored(
    transactional_db, integration_client, api_channel, monkeypatch
):
    services_or_skip(need_redis=True)
    broker_url = os.environ["REDIS_URL"]
    queue = f"helpdesk-test-{uuid.uuid4().hex[:12]}"
    sender = Celery("helpdesk-test-sender", broker=broker_url, set_as_current=False)
    broker = redis.Redis.from_url(broker_url)
    # On commit, the API enqueues the event's id; here it goes to the Redis broker on the test's own queue
    # (in this process Celery is eager, so without this the task would run right here).
    monkeypatch.setattr(
        process_inbound_event,
        "delay",
        lambda event_id: sender.send_task("channels_app.process_inbound_event", args=[event_id], queue=queue),
    )
    log_path = Path(tempfile.mkdtemp(prefix="helpdesk-worker-")) / "worker.log"
    worker = start_worker(queue=queue, broker_url=broker_url, log_path=log_path)
    try:
        # When the company's system posts a message
        payload = {"id": "worker-msg-1", "sender": {"external_id": "u-42", "name": "Ann"}, "text": "Out of process"}
        response = integration_client.post(
            f"/api/v1/channels/{api_channel.pk}/messages", data=json.dumps(payload), content_type="application/json"
        )

        # Then it was stored raw and not processed here
        assert response.status_code == 202, response.content
        assert response.json()["status"] == "received"
        event = InboundEvent.objects.get(public_id=response.json()["id"])

        # And the worker processes it within a minute
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            event.refresh_from_db()
            if event.status != InboundEvent.Status.RECEIVED:
                break
            assert worker.poll() is None, f"the worker exited:\n{log_path.read_text()}"
            time.sleep(0.25)
        assert event.status == InboundEvent.Status.PROCESSED, (event.status, event.reason, log_path.read_text())
        assert event.attempts == 1

        message = Message.objects.select_related("ticket", "identity").get(channel=api_channel)
        assert (message.provider_id, message.text, message.direction) == ("worker-msg-1", "Out of process", "inbound")
        assert (message.identity.kind, message.identity.value) == ("external", "u-42")
        ticket = Ticket.objects.get()
        assert message.ticket == ticket
        assert (ticket.customer_id, ticket.channel_id, ticket.status) == (message.customer_id, api_channel.pk, "new")
        assert "channels_app.process_inbound_event" in log_path.read_text()
        # And the worker, in turn, enqueued the new ticket's routing on the broker after its commit (the hook runs
        # just after the commit this test saw, so it may land a moment later)
        deadline = time.monotonic() + WAIT_SECONDS
        routed = take_route_ticket_message(broker, ticket.pk)
        while not routed and time.monotonic() < deadline:
            time.sleep(0.1)
            routed = take_route_ticket_message(broker, ticket.pk)
        assert routed, log_path.read_text()
    finally:
        stop_worker(worker)
        # The queue and kombu's bookkeeping of it, so runs leave nothing behind on the broker.
        broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        broker.close()
