"""The worker-stopping Redis bug, step by step on a real Redis (helpdesk/kombu_redis.py explains it).

What Celery's consumer does when the broker connection is lost (``Consumer.on_connection_error_after_connected``):
``connection.collect()``, then ``ignore_errors(connection, connection.close)``. Anything but a connection or
channel error escaping that stops the worker ("Unrecoverable error"). The state that leads there: the task
channel has a task delivered and not acknowledged and a BRPOP in flight, and another channel of the connection has
unacknowledged work too (as the worker's channels have while it runs tasks).
"""

import contextlib

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.common import ignore_errors
from kombu.transport import redis as kombu_redis

from helpdesk.kombu_redis import kombu_redis_guard_is_installed


def connection_in_the_crash_state(redis_broker) -> tuple[Connection, list]:
    connection = Connection(redis_broker.url)
    connection.connect()
    delivered = []
    channels = [connection.default_channel, connection.channel()]
    for number, channel in enumerate(channels):
        queue = Queue(f"fault-{number}", Exchange(f"fault-{number}", type="direct"), routing_key=f"fault-{number}")
        Producer(channel).publish(
            {"task": number}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
        )
        consumer = Consumer(channel, queues=[queue], accept=["json"], prefetch_count=2)
        consumer.register_callback(lambda body, message: delivered.append(message))
        consumer.consume()
    for _ in range(3):  # each channel gets its message; the last read leaves a BRPOP waiting
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=0.3)
    assert len(delivered) == 2
    assert connection.default_channel._in_poll
    return connection, channels


def reconnect_teardown(connection: Connection) -> None:
    """What Celery's consumer runs on a lost connection."""
    connection.collect(socket_timeout=1)
    ignore_errors(connection, connection.close)


def forget_unacked(channels) -> None:
    # Their restore at interpreter exit would only print that Redis is gone.
    for channel in channels:
        channel.qos._on_collect.cancel()


def test_a_lost_redis_makes_the_teardown_raise_only_what_celery_ignores(redis_broker):
    assert kombu_redis_guard_is_installed()  # by helpdesk.celery, as in every process of the project
    connection, channels = connection_in_the_crash_state(redis_broker)

    redis_broker.stop()
    reconnect_teardown(connection)  # raises nothing: the consumer goes on to reconnect

    forget_unacked(channels)


def test_kombu_without_the_workaround_still_stops_the_worker_here(redis_broker, monkeypatch):
    """If this fails, kombu fixed the bug: remove helpdesk/kombu_redis.py and lift the pin in pyproject.toml."""
    monkeypatch.setattr(kombu_redis.Channel, "_connparams", kombu_redis.Channel._connparams.__wrapped__)
    connection, channels = connection_in_the_crash_state(redis_broker)

    redis_broker.stop()
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'hostname'"):
        reconnect_teardown(connection)

    forget_unacked(channels)
