"""The broker goes away while messages arrive, and comes back: the worker is still running, and every message
posted before, during and after is on a timeline exactly once, without anyone's help.

The broker (Redis, then RabbitMQ) is the test's own; the worker and beat run out of process as deployed. Messages
are posted to the API channel in this process, which enqueues their processing on the broker as the web server
does. The outage starts while the worker has tasks in hand (that is when kombu's Redis transport stopped the
worker for good: helpdesk/kombu_redis.py); a few short restarts come first, each a new chance of that moment,
then one of about 20 seconds. What was posted while the broker was down could not be enqueued: beat's sweep
(every second here, for events older than 3 seconds) enqueues it once the broker is back, and also enqueues again
some that are still waiting in the broker, which must not make a second message.
"""

import json
import os
import time
import uuid

import pytest

from channels_app.models import InboundEvent
from tests.conftest import services_or_skip
from tests.faults.processes import CeleryProcess
from tickets.models import Message

pytestmark = pytest.mark.services

OUTAGE_SECONDS = 20
DRAIN_TIMEOUT_SECONDS = 90
SWEEP = {"STALLED_AFTER_SECONDS": "3", "INBOUND_REQUEUE_INTERVAL_SECONDS": "1"}


class Poster:
    """Posts numbered messages to the API channel and remembers each answer."""

    def __init__(self, client, channel) -> None:
        self.client = client
        self.url = f"/api/v1/channels/{channel.pk}/messages"
        self.answers: dict[str, int] = {}
        self.run = uuid.uuid4().hex[:8]

    def post(self, count: int = 1) -> None:
        for _ in range(count):
            provider_id = f"outage-{self.run}-{len(self.answers) + 1}"
            payload = {"id": provider_id, "sender": {"external_id": f"u-{len(self.answers) % 7}"}, "text": "Hello?"}
            response = self.client.post(self.url, data=json.dumps(payload), content_type="application/json")
            self.answers[provider_id] = response.status_code


def wait_until_processed(provider_ids, *, worker: CeleryProcess, beat: CeleryProcess) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while True:
        waiting = InboundEvent.objects.filter(provider_id__in=provider_ids).exclude(
            status=InboundEvent.Status.PROCESSED
        )
        if not waiting.exists():
            return
        assert worker.is_alive(), f"the worker exited:\n{worker.log()[-8000:]}"
        assert time.monotonic() < deadline, (
            list(waiting.values_list("provider_id", "status", "reason")),
            worker.log()[-6000:],
            beat.log()[-3000:],
        )
        time.sleep(0.25)


def outage_scenario(broker, *, short_restarts: int, redis_url: str, client, channel, celery_sends_to) -> None:
    celery_sends_to(broker.url)
    worker = CeleryProcess(kind="worker", broker_url=broker.url, redis_url=redis_url, env=SWEEP)
    beat = CeleryProcess(kind="beat", broker_url=broker.url, redis_url=redis_url, env=SWEEP)
    try:
        worker.wait_for_log(" ready.")
        poster = Poster(client, channel)
        # Given a worker at work
        poster.post(5)
        wait_until_processed(list(poster.answers), worker=worker, beat=beat)
        connections = worker.log().count("Connected to ")

        # When the broker restarts while tasks are in hand, a few times
        for _ in range(short_restarts):
            poster.post(6)
            broker.stop()
            broker.start()
            connections += 1
            worker.wait_for_log("Connected to ", count=connections)
        # and then stays away for about 20 seconds while messages arrive
        poster.post(6)
        broker.stop()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < outage_ends:
            poster.post()
            time.sleep(1)
        broker.start()
        poster.post(5)

        # Then everything posted was accepted and is taken in, once
        assert set(poster.answers.values()) == {202}, poster.answers
        wait_until_processed(list(poster.answers), worker=worker, beat=beat)
        messages = list(Message.objects.filter(channel=channel).values_list("provider_id", flat=True))
        assert sorted(messages) == sorted(poster.answers)  # no message missing, none twice
        # And the worker is the one that was started, still running
        assert worker.is_alive(), worker.log()[-8000:]
        assert "Unrecoverable error" not in worker.log()
        assert beat.is_alive(), beat.log()[-4000:]
    finally:
        worker.stop()
        beat.stop()


def test_the_worker_outlives_a_redis_outage_and_the_backlog_drains_once(
    transactional_db, redis_broker, integration_client, api_channel, celery_sends_to
):
    services_or_skip(need_postgres=True)
    # One Redis for everything, as docker-compose.yml runs it: broker, cache, channel layer.
    outage_scenario(
        redis_broker,
        short_restarts=3,
        redis_url=redis_broker.url,
        client=integration_client,
        channel=api_channel,
        celery_sends_to=celery_sends_to,
    )


def test_the_worker_outlives_a_rabbitmq_outage_and_the_backlog_drains_once(
    transactional_db, rabbitmq_broker, integration_client, api_channel, celery_sends_to
):
    services_or_skip(need_postgres=True, need_redis=True)
    outage_scenario(
        rabbitmq_broker,
        short_restarts=0,  # the worker-stopping race is the Redis transport's
        redis_url=os.environ["REDIS_URL"],  # the cache and channel layer stay on the suite's Redis
        client=integration_client,
        channel=api_channel,
        celery_sends_to=celery_sends_to,
    )
