"""helpdesk.cache.SharedRedisCache: every instance of the backend (Django makes one per request context under
ASGI) shares one client, and so one connection pool, per server list and options."""

import contextvars
import os

from django.core.cache import caches

from helpdesk.cache import SharedRedisCache
from tests.conftest import services_or_skip


def redis_url() -> str:
    services_or_skip(need_redis=True)
    return os.environ["REDIS_URL"]


def test_instances_share_one_client_and_pool():
    url = redis_url()
    first = SharedRedisCache(url, {})
    second = SharedRedisCache(url, {})
    other_options = SharedRedisCache(url, {"OPTIONS": {"socket_timeout": 3}})

    assert first._cache is second._cache
    assert first._cache._get_connection_pool(write=True) is second._cache._get_connection_pool(write=True)
    assert other_options._cache is not first._cache


def test_requests_in_their_own_contexts_reuse_the_connection_pool():
    redis_url()

    def one_request(key: str):
        # What each ASGI request is: a context of its own, so Django's cache handler makes a new backend instance
        cache = caches["default"]
        cache.set(key, "value", 30)
        return cache, cache._cache._get_connection_pool(write=True)

    first_cache, first_pool = contextvars.Context().run(one_request, "shared-cache-test-1")
    second_cache, second_pool = contextvars.Context().run(one_request, "shared-cache-test-2")

    assert isinstance(first_cache, SharedRedisCache)
    assert first_cache is not second_cache  # Django's per-context instances...
    assert first_pool is second_pool  # ...with one pool between them
    assert caches["default"].get("shared-cache-test-1") == "value"


def test_commands_reuse_one_redis_client_per_server():
    """Django's client builds a ``redis.Redis`` per command (copying its reply callbacks each time); ours keeps one
    per server, thread-safe like the pool under it, and it still works for every command."""
    url = redis_url()
    cache = SharedRedisCache(url, {})
    cache.set("shared-cache-reuse", 1, 30)

    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=False)
    assert cache.incr("shared-cache-reuse") == 2
    assert cache.get("shared-cache-reuse") == 2
    assert cache._cache.get_client(write=True).connection_pool is cache._cache._get_connection_pool(write=True)
