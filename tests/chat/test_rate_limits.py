"""chat.services.rate_limits: a visitor's messages per minute, counted in one Redis round trip, or with the local
cache's incr on the embedded default."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache, caches

from chat.services.rate_limits import WINDOW_SECONDS, visitor_message_slot_take
from helpdesk.cache import SharedRedisCache
from tests.conftest import services_or_skip

LOCAL_MEMORY = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rate-tests"}}


@pytest.fixture(params=["redis", "local memory"])
def any_cache(request, settings):
    if request.param == "redis":
        services_or_skip(need_redis=True)
        assert isinstance(caches["default"], SharedRedisCache)  # the one-round-trip path
    else:
        settings.CACHES = LOCAL_MEMORY
        assert not hasattr(caches["default"], "window_count")  # the incr path
    settings.HELPDESK = {**settings.HELPDESK, "CHAT_VISITOR_MESSAGES_PER_MINUTE": 3}
    return request.param


def test_the_limit_holds_per_visitor_and_the_next_one_waits_for_the_window(any_cache):
    flooder, other = uuid.uuid4(), uuid.uuid4()

    allowed = [visitor_message_slot_take(visitor_public_id=flooder) for _ in range(3)]
    refused = visitor_message_slot_take(visitor_public_id=flooder)

    assert allowed == [0, 0, 0]
    assert 1 <= refused <= WINDOW_SECONDS
    assert visitor_message_slot_take(visitor_public_id=other) == 0


def test_redis_counts_in_one_round_trip_and_the_window_expires():
    services_or_skip(need_redis=True)
    key = f"window-test:{uuid.uuid4().hex}"

    first = cache.window_count(key, seconds=30)
    second = cache.window_count(key, seconds=30)

    assert first[0] == 1 and second[0] == 2
    assert 0 < second[1] <= 30
    raw_key = cache.make_and_validate_key(key)
    assert 0 < cache._cache.get_client(raw_key).ttl(raw_key) <= 30  # the count never outlives its window


def test_concurrent_messages_each_get_a_count_of_their_own():
    services_or_skip(need_redis=True)
    key = f"window-test:{uuid.uuid4().hex}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = sorted(pool.map(lambda _: cache.window_count(key, seconds=30)[0], range(40)))

    assert counts == list(range(1, 41))
