"""How many messages a chat visitor may send: ``CHAT_VISITOR_MESSAGES_PER_MINUTE`` each, counted in the shared
cache (Redis in production, so every server process counts together). One visitor's flood never slows another.

A window opens at a visitor's first message and lasts a minute. With Redis the count is one round trip on the
widget's hottest path (``SharedRedisCache.window_count``: the window opened, counted and its time left read at
once). Any other cache (the embedded default's local memory) counts with ``incr``, atomic there too, and opens the
window with ``add``, so two first messages at once do not both open it.

Without Redis (it is restarting, or unreachable) the limit fails open to a count of this process's own, in local
memory: the visitor's message is still stored, and a flood is still refused, only counted per server process
until Redis answers again (it is tried again a few seconds after it failed: ``helpdesk.cache.RedisOutage``).
"""

import math
import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache

from helpdesk.cache import RedisOutage

WINDOW_SECONDS = 60

_process_counts = LocMemCache("chat-visitor-rate-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})
redis_outage = RedisOutage(event="chat.rate_limit_redis_unavailable")


def visitor_message_slot_take(*, visitor_public_id) -> float:
    """Take one message slot. Returns 0 when the message may go, else the seconds until the window ends."""
    limit = settings.HELPDESK["CHAT_VISITOR_MESSAGES_PER_MINUTE"]
    key = f"chat:rate:{visitor_public_id.hex}"
    if not redis_outage.is_skipping():
        try:
            return _slot_take(counts=cache, key=key, limit=limit)
        except redis.RedisError:
            redis_outage.failed()
    return _slot_take(counts=_process_counts, key=key, limit=limit)


def _slot_take(*, counts, key: str, limit: int) -> float:
    window_count = getattr(counts, "window_count", None)
    if window_count is not None:
        count, seconds_left = window_count(key, seconds=WINDOW_SECONDS)
        return 0 if count <= limit else max(1, seconds_left)
    return _slot_take_with_incr(counts=counts, key=key, limit=limit)


def _slot_take_with_incr(*, counts, key: str, limit: int) -> float:
    now = time.time()
    # The open window counted first: the usual case costs one increment, not the two adds before it as well.
    try:
        count = counts.incr(key)
    except ValueError:
        # No window open: this message opens one. ``add`` lets one of two concurrent first messages open it; the
        # other counts in it. The window's start is kept beside the count, to answer Retry-After without a TTL query.
        if counts.add(key, 1, timeout=WINDOW_SECONDS):
            counts.set(f"{key}:start", now, timeout=WINDOW_SECONDS)
            count = 1
        else:
            try:
                count = counts.incr(key)
            except ValueError:  # that window ended in between (a minute's race): this message goes
                count = 1
    if count <= limit:
        return 0
    started = counts.get(f"{key}:start") or now
    return max(1, math.ceil(started + WINDOW_SECONDS - now))
