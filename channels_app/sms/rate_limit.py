"""A per-sender SMS send rate that holds across every worker: one GCRA ("generic cell rate algorithm") bucket per
sending number or Messaging Service.

Carriers and Twilio take a long code's messages at about one per second; what is sent faster waits in Twilio's
queue and, past its limit, fails (30001). So the desk spaces sends itself: each sender has a "theoretical arrival
time" (TAT); a send is granted when the TAT is not further ahead than the burst allows, and moves it one interval
on. With Redis the check-and-move is one Lua script, atomic for all workers, on Redis' own clock (workers' clocks
may disagree). Without Redis (the embedded single-worker setup) the same algorithm runs under a process lock on
Django's local-memory cache.

When Redis is configured but does not answer (restarting, unreachable), sending goes on with the local algorithm,
in memory of this worker process: each process then spaces its own sends, so during the outage a sender may get
one slot per interval per worker process. It is tried again a few seconds after it failed
(``helpdesk.cache.RedisOutage``).
"""

import threading
import time
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache

from helpdesk.cache import SOCKET_CONNECT_TIMEOUT_SECONDS, SOCKET_TIMEOUT_SECONDS, RedisOutage

# Sends allowed back to back before spacing applies. 1: strictly one per interval, the carriers' pace.
BURST = 1
KEY_PREFIX = "helpdesk:sms-rate:"

# KEYS[1] the sender's bucket; ARGV[1] the interval between sends in ms; ARGV[2] the burst.
# Returns "0" for a granted send, else the milliseconds until one would be.
_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - (burst - 1) * interval
if now < allow_at then
  return tostring(allow_at - now)
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return '0'
"""

_local_lock = threading.Lock()
_outage_buckets = LocMemCache("sms-rate-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})
redis_outage = RedisOutage(event="channels_app.sms_rate_limit_redis_unavailable")


def sms_send_slot_take(*, sender: str, rate_per_second: float) -> float:
    """Take a send slot for ``sender`` (an E.164 number or a Messaging Service sid). Returns 0.0 when the send may
    go now, else how many seconds until a slot frees (nothing is taken then)."""
    interval_ms = 1000.0 / rate_per_second
    key = KEY_PREFIX + sender
    if not settings.REDIS_URL:
        return _local_take(key, interval_ms, buckets=cache) / 1000.0
    if not redis_outage.is_skipping():
        try:
            return float(_redis(settings.REDIS_URL).eval(_GCRA, 1, key, repr(interval_ms), BURST)) / 1000.0
        except redis.RedisError:
            redis_outage.failed()
    return _local_take(key, interval_ms, buckets=_outage_buckets) / 1000.0


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # One connection pool per process (redis-py clients are thread-safe), not one connection per send.
    return redis.Redis.from_url(
        url, socket_connect_timeout=SOCKET_CONNECT_TIMEOUT_SECONDS, socket_timeout=SOCKET_TIMEOUT_SECONDS
    )


def _local_take(key: str, interval_ms: float, *, buckets) -> float:
    with _local_lock:
        now = time.time() * 1000
        tat = max(buckets.get(key, now), now)
        allow_at = tat - (BURST - 1) * interval_ms
        if now < allow_at:
            return allow_at - now
        new_tat = tat + interval_ms
        buckets.set(key, new_tat, timeout=(new_tat - now) / 1000 + 1)
        return 0.0
