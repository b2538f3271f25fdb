"""Django's Redis cache backend, with one client, and so one connection pool, per process.

Django keeps a cache backend instance per request context: under ASGI every request made a new ``RedisCache``,
whose client built a new connection pool, and its first command opened a new TCP connection to Redis (with redis-py's
handshake) that was dropped with the request. The chat widget's rate limit counts every message in the cache, so
each message paid a Redis connection. redis-py's pools are thread-safe; sharing one per process (per server list
and options) keeps connections open across requests, as under WSGI.
"""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple, RedisCacheClient] = {}
_clients_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
