"""How many messages a chat visitor may send: ``CHAT_VISITOR_MESSAGES_PER_MINUTE`` each, counted in the shared
cache (Redis in production, so every server process counts together). One visitor's flood never slows another.

A window opens at a visitor's first message and lasts a minute; the counter is incremented atomically
(``cache.incr``), so concurrent requests cannot both take the last slot, and opened with ``cache.add``, so two
first messages at once do not both open it.
"""

import math
import time

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 60


def visitor_message_slot_take(*, visitor_public_id) -> float:
    """Take one message slot. Returns 0 when the message may go, else the seconds until the window ends."""
    limit = settings.HELPDESK["CHAT_VISITOR_MESSAGES_PER_MINUTE"]
    key = f"chat:rate:{visitor_public_id.hex}"
    now = time.time()
    # The open window counted first: the usual case costs one increment, not the two adds before it as well.
    try:
        count = cache.incr(key)
    except ValueError:
        # No window open: this message opens one. ``add`` lets one of two concurrent first messages open it; the
        # other counts in it. The window's start is kept beside the count, to answer Retry-After without a TTL query.
        if cache.add(key, 1, timeout=WINDOW_SECONDS):
            cache.set(f"{key}:start", now, timeout=WINDOW_SECONDS)
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # that window ended in between (a minute's race): this message goes
                count = 1
    if count <= limit:
        return 0
    started = cache.get(f"{key}:start") or now
    return max(1, math.ceil(started + WINDOW_SECONDS - now))
