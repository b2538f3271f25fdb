"""The per-sender SMS send rate, on the real Redis (shared by all workers) and on the local fallback: however many
threads or processes ask at once, one sender gets at most rate x elapsed (+ the burst) slots, and senders do not
share a bucket."""

import math
import multiprocessing
import threading
import time

import pytest

from channels_app.sms import rate_limit
from channels_app.sms.rate_limit import BURST, sms_send_slot_take
from tests.channels_app.sms_fixtures import sms_rate_buckets_clear
from tests.conftest import services_or_skip

NUMBER = "+14155550199"
OTHER_NUMBER = "+14155550198"


@pytest.fixture(autouse=True)
def empty_buckets():
    sms_rate_buckets_clear()
    yield
    sms_rate_buckets_clear()


@pytest.fixture(params=["redis", "local"])
def backend(request, settings):
    """Both ways the limiter runs: on Redis (REDIS_URL) and on Django's local cache (no Redis)."""
    if request.param == "redis":
        services_or_skip(need_redis=True)
    else:
        settings.REDIS_URL = ""
    return request.param


def hammer(sender: str, rate: float, *, tries: int, threads: int) -> int:
    """``threads`` threads each asking ``tries`` times at once; how many slots they got."""
    start = threading.Barrier(threads)
    granted = []

    def worker():
        start.wait()
        granted.append(sum(sms_send_slot_take(sender=sender, rate_per_second=rate) == 0.0 for _ in range(tries)))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(granted)


def most_allowed(rate: float, elapsed: float) -> int:
    """What a correct limiter may grant in ``elapsed`` seconds: the burst, then one slot per interval."""
    return BURST + math.floor(elapsed * rate)


def test_the_first_send_goes_and_the_next_waits_at_most_one_interval(backend):
    assert sms_send_slot_take(sender=NUMBER, rate_per_second=2.0) == 0.0

    wait = sms_send_slot_take(sender=NUMBER, rate_per_second=2.0)

    assert 0 < wait <= 0.5


def test_a_refused_ask_takes_nothing(backend):
    assert sms_send_slot_take(sender=NUMBER, rate_per_second=1.0) == 0.0
    first_wait = sms_send_slot_take(sender=NUMBER, rate_per_second=1.0)

    second_wait = sms_send_slot_take(sender=NUMBER, rate_per_second=1.0)

    # Still waiting for the same slot (less, as time passed), not for one further out
    assert 0 < second_wait <= first_wait <= 1.0


def test_the_slot_frees_after_the_wait(backend):
    assert sms_send_slot_take(sender=NUMBER, rate_per_second=20.0) == 0.0
    wait = sms_send_slot_take(sender=NUMBER, rate_per_second=20.0)
    assert wait > 0

    time.sleep(wait)

    assert sms_send_slot_take(sender=NUMBER, rate_per_second=20.0) == 0.0


def test_two_senders_do_not_share_a_bucket(backend):
    assert sms_send_slot_take(sender=NUMBER, rate_per_second=1.0) == 0.0
    assert sms_send_slot_take(sender=NUMBER, rate_per_second=1.0) > 0

    assert sms_send_slot_take(sender=OTHER_NUMBER, rate_per_second=1.0) == 0.0
    assert sms_send_slot_take(sender="MG9752274e9e519418a7406176694466fa", rate_per_second=1.0) == 0.0


@pytest.mark.parametrize("rate", [1.0, 4.0])
def test_many_threads_hammering_one_number_get_at_most_the_rate(backend, rate):
    started = time.monotonic()
    granted = hammer(NUMBER, rate, tries=30, threads=8)
    elapsed = time.monotonic() - started

    assert 1 <= granted <= most_allowed(rate, elapsed)


def test_hammering_one_number_leaves_another_untouched(backend):
    results = {}

    def run(sender):
        results[sender] = hammer(sender, 1.0, tries=20, threads=4)

    started = time.monotonic()
    pair = [threading.Thread(target=run, args=(sender,)) for sender in (NUMBER, OTHER_NUMBER)]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join()
    elapsed = time.monotonic() - started

    for sender in (NUMBER, OTHER_NUMBER):
        assert 1 <= results[sender] <= most_allowed(1.0, elapsed)


def _take_in_process(args) -> int:
    sender, rate, tries = args
    # A forked child must not reuse the parent's Redis connections.
    rate_limit._redis.cache_clear()
    return sum(sms_send_slot_take(sender=sender, rate_per_second=rate) == 0.0 for _ in range(tries))


def test_several_worker_processes_share_the_redis_bucket():
    services_or_skip(need_redis=True)
    context = multiprocessing.get_context("fork")
    started = time.monotonic()
    with context.Pool(4) as pool:
        granted = sum(pool.map(_take_in_process, [(NUMBER, 2.0, 40)] * 4))
    elapsed = time.monotonic() - started

    assert 1 <= granted <= most_allowed(2.0, elapsed)
