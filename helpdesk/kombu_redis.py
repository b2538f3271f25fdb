"""A narrow workaround for kombu's Redis transport, which can stop a Celery worker for good when Redis goes away.

What happens (celery 5.7.0, kombu 5.7.0, reproduced step by step in tests/faults/test_kombu_redis_close.py): the
worker's consumer notices the lost connection and tears it down with ``Connection.collect()``, then
``connection.close()`` (``Consumer.on_connection_error_after_connected``).

1. ``collect()`` closes the default channel first. When that channel has a ``BRPOP`` in flight, its ``close()``
   reads the pending reply first (``_brpop_read``, added in celery/kombu#1733 so a popped task is not lost); on a
   dead socket that read raises ``ConnectionError`` before the channel is marked closed.
2. ``Transport.close_connection()`` then closes the other channels one by one and stops at the first one whose
   ``close()`` raises (restoring its unacknowledged messages needs the dead Redis), so the default channel is
   still open when ``collect()`` drops the transport's client (``transport.client = None``).
3. ``connection.close()`` closes the default channel again, now for real: it restores its unacknowledged messages,
   which builds a new Redis pool from ``transport.client``, now ``None``:
   ``AttributeError: 'NoneType' object has no attribute 'hostname'`` in ``Channel._connparams``. Celery's
   ``ignore_errors`` ignores connection errors only, so the error escapes the consumer's reconnect path and the
   worker exits ("Unrecoverable error"). It takes a task in flight and the pub/sub socket being read before the
   ``BRPOP`` one, which is why it happens on some outages and not others.

The same ``AttributeError`` from ``_connparams`` on a channel of a closed connection is celery/kombu#582 (there
while restarting Gossip). No kombu release fixes it (5.7.0 is the newest), so pyproject.toml pins kombu below 5.8:
check this module (and its test, which fails once kombu no longer needs it) before moving on.

The workaround: a channel whose connection is closed raises ``redis.ConnectionError`` when asked for a new Redis
pool, the error every caller on these paths already handles as what it is, a lost connection. The consumer's
reconnect loop then goes on; the unacknowledged messages stay in Redis's unacked index, and kombu restores them
after the visibility timeout as it does for a worker that was killed.
"""

import functools

import redis
from kombu.transport import redis as kombu_redis

_MARK = "_helpdesk_closed_connection_guard"


def _refusing_closed_connections(connparams):
    @functools.wraps(connparams)
    def guarded(self, *args, **kwargs):
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.exceptions.ConnectionError("This channel's broker connection is closed.")
        return connparams(self, *args, **kwargs)

    setattr(guarded, _MARK, True)
    return guarded


def kombu_redis_guard_install() -> None:
    """Make kombu's Redis channels refuse to build a pool for a closed connection. Idempotent."""
    channel = kombu_redis.Channel
    if not getattr(channel._connparams, _MARK, False):
        channel._connparams = _refusing_closed_connections(channel._connparams)


def kombu_redis_guard_is_installed() -> bool:
    return getattr(kombu_redis.Channel._connparams, _MARK, False)
