"""Fault tests: brokers of their own that the tests stop and start (tests/faults/brokers.py)."""

import kombu.pools
import pytest

from channels_app.sms import rate_limit as sms_rate_limit
from chat.services import rate_limits as chat_rate_limits
from helpdesk.celery import app as celery_app
from tests.conftest import REQUIRE_SERVICES
from tests.faults.brokers import RabbitMQNode, RedisServer, rabbitmq_server_binary, redis_server_binary


def _binary_or_skip(binary: str | None, message: str) -> None:
    """Skipped on a laptop without the server; a failure in CI (HELPDESK_REQUIRE_SERVICES=1), where a missing
    binary is a broken run (.ci/run installs it)."""
    if binary is None:
        if REQUIRE_SERVICES:
            pytest.fail(message + " (HELPDESK_REQUIRE_SERVICES is set)")
        pytest.skip(message)


@pytest.fixture
def redis_broker():
    _binary_or_skip(redis_server_binary(), "needs redis-server (Debian package redis-server)")
    server = RedisServer().start()
    yield server
    server.remove()


@pytest.fixture
def rabbitmq_broker():
    _binary_or_skip(rabbitmq_server_binary(), "needs rabbitmq-server (Debian package rabbitmq-server)")
    node = RabbitMQNode().start()
    yield node
    node.remove()


@pytest.fixture(autouse=True)
def _redis_outages_forgotten():
    """Each test starts, and leaves the next one, with every Redis use of this process trying Redis."""
    for outage in (chat_rate_limits.redis_outage, sms_rate_limit.redis_outage):
        outage.reset()
    yield
    for outage in (chat_rate_limits.redis_outage, sms_rate_limit.redis_outage):
        outage.reset()


@pytest.fixture
def celery_sends_to():
    """``celery_sends_to(url)``: from now on this process's Celery app sends its tasks to the broker at ``url``,
    as the web server does (the suite otherwise runs them eagerly, in the caller), with the settings' publish
    retries and timeouts. Undone after the test."""
    conf = celery_app.conf
    saved = {name: conf[name] for name in ("broker_url", "task_always_eager", "broker_transport_options")}

    def forget_connections() -> None:
        if celery_app._pool is not None:
            celery_app._pool.force_close_all()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        kombu.pools.reset()

    def send_to(url: str) -> None:
        forget_connections()
        conf.broker_url = url
        conf.task_always_eager = False
        if not url.startswith("redis"):
            conf.broker_transport_options = {}  # as the settings leave it for RabbitMQ

    yield send_to
    forget_connections()
    for name, value in saved.items():
        conf[name] = value
