"""Fault tests: brokers of their own that the tests stop and start (tests/faults/brokers.py)."""

import pytest

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
