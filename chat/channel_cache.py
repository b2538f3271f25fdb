"""Active chat channels by public key, kept in each server process for a few seconds.

Every widget request names its channel by public key, and reading that row (and decrypting its settings) was the
first query of every chat message. A process keeps what it read for ``CHAT_CHANNEL_CACHE_SECONDS`` (5 by
default; 0 turns it off): a change made in the console or the admin (allowed origins, a new secret, deactivation)
reaches the other server processes within that time, and the process that saved it at once (the model's save and
delete signals clear it). An unknown key is remembered as unknown too, so a flood of made-up keys does not reach
the database; the cache holds at most ``MAX_ENTRIES`` keys.

Each caller gets its own copy of the channel: no request sees what another one changed on its instance.
"""

import copy
import threading
import time

from django.conf import settings

from channels_app.models import Channel

MAX_ENTRIES = 10_000

_entries: dict[str, tuple[float, Channel | None]] = {}
_lock = threading.Lock()


def chat_channel_active_get(*, public_key: str) -> Channel | None:
    """The active chat channel with this public key, or None."""
    seconds = settings.HELPDESK["CHAT_CHANNEL_CACHE_SECONDS"]
    now = time.monotonic()
    entry = _entries.get(public_key)
    if entry is None or entry[0] <= now:
        channel = Channel.objects.filter(public_key=public_key, kind=Channel.Kind.CHAT, is_active=True).first()
        if seconds <= 0:
            return channel
        entry = (now + seconds, channel)
        with _lock:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[public_key] = entry
    return copy.deepcopy(entry[1])


def chat_channel_cache_clear(**kwargs) -> None:
    """Forget every channel read (a signal receiver: a channel was saved or deleted in this process)."""
    with _lock:
        _entries.clear()
