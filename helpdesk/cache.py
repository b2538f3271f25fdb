"""Django's Redis cache backend, with one client, and so one connection pool, per process.

Django keeps a cache backend instance per request context: under ASGI every request made a new ``RedisCache``,
whose client built a new connection pool, and its first command opened a new TCP connection to Redis (with redis-py's
handshake) that was dropped with the request. The chat widget's rate limit counts every message in the cache, so
each message paid a Redis connection. redis-py's pools are thread-safe; sharing one per process (per server list
and options) keeps connections open across requests, as under WSGI. Django's client also builds a new
``redis.Redis`` for every command (with its table of reply callbacks, copied key by key: a third of a millisecond
of processor time each); a ``redis.Redis`` is thread-safe too, so one per pool is kept and reused.

It also counts in fixed windows in one round trip (``window_count``), for rate limits on hot paths: Django's
``incr`` costs two (it asks whether the key exists first) and cannot open a window with its expiry.

What uses Redis on a request's path must answer without it too (a Redis restart is no reason for a 5xx):
``RedisOutage`` is how such a caller stops trying Redis for a few seconds after it failed, and every connection of
this cache has a connect and read timeout, so an unreachable host costs at most that, not the operating system's
connect timeout.
"""

import logging
import threading
import time

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

# Redis answers in well under a millisecond; these only bound what a host that does not answer costs a request.
SOCKET_CONNECT_TIMEOUT_SECONDS = 0.5
SOCKET_TIMEOUT_SECONDS = 1.0
# How long a caller goes without Redis after it failed, before trying it again.
OUTAGE_RETRY_SECONDS = 5.0

_clients: dict[tuple, RedisCacheClient] = {}
_clients_lock = threading.Lock()


class RedisOutage:
    """Whether one use of Redis should skip it for now: after a failure (``failed``), for ``OUTAGE_RETRY_SECONDS``,
    so that each request of an outage does not pay a failed connection. Per process; the warning is logged once
    per skip period, with the ``event`` name given."""

    def __init__(self, *, event: str) -> None:
        self.event = event
        self._skipping_until = 0.0

    def is_skipping(self) -> bool:
        return time.monotonic() < self._skipping_until

    def failed(self) -> None:
        self._skipping_until = time.monotonic() + OUTAGE_RETRY_SECONDS
        logger.warning(self.event, exc_info=True)

    def reset(self) -> None:
        self._skipping_until = 0.0


class ReusingRedisCacheClient(RedisCacheClient):
    """Django's client, handing out one ``redis.Redis`` per connection pool instead of a new one per command."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("socket_connect_timeout", SOCKET_CONNECT_TIMEOUT_SECONDS)
        kwargs.setdefault("socket_timeout", SOCKET_TIMEOUT_SECONDS)
        super().__init__(*args, **kwargs)
        self._redis_by_server: dict[int, object] = {}  # server index (as Django picks it) -> its redis.Redis

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._redis_by_server.get(index)
        if client is None:
            # Two threads may both build one the first time; either is fine, they share the server's pool.
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._redis_by_server[index] = self._client(connection_pool=self._pools[index])
        return client


class SharedRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = ReusingRedisCacheClient(self._servers, **self._options)
        return client

    def window_count(self, key: str, *, seconds: int) -> tuple[int, int]:
        """Count one more in the window ``key``, opened now for ``seconds`` if none is open. Returns the count in
        the window, this one included, and the seconds left of it. One round trip: the window opened if absent
        (``SET NX EX``), incremented and its expiry read, pipelined in one transaction, so concurrent callers each
        get a count of their own and no count outlives its window."""
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        with client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=seconds, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            _, count, ttl = pipe.execute()
        return int(count), max(int(ttl), 0)
