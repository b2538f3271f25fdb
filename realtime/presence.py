"""Who is connected (agents, chat visitors, agents viewing a ticket), kept so a crashed server's connections expire.

Each websocket connection is one member of a Redis sorted set, scored with the time it expires: the consumer
refreshes its members every ``HEARTBEAT_SECONDS`` and removes them when it closes; a server that dies without
closing stops refreshing, and its connections drop out after ``TTL_SECONDS``. Counting members (not incrementing a
counter) is what lets one crashed server's connections expire while another server's stay. Without ``REDIS_URL``
(one development process) the same structure lives in this process's memory.

Presence is best-effort like the pushes: when Redis fails, the reads answer "nobody" (the widget then offers email)
and the writes are logged and skipped.
"""

import logging
import math
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from agents.models import AgentProfile

logger = logging.getLogger(__name__)

TTL_SECONDS = 90
HEARTBEAT_SECONDS = 30
KEY_PREFIX = "helpdesk:presence:"
_AGENTS_KEY = "agents"


@dataclass(frozen=True)
class PresenceEntry:
    """One connection's membership: what the consumer refreshes and removes."""

    key: str
    member: str


def _now() -> float:
    return time.time()


# --- Storage ---------------------------------------------------------------------------------------------------


class _RedisStore:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def put(self, entries: Iterable[PresenceEntry], *, expires_at: float, now: float) -> None:
        pipe = self.client.pipeline(transaction=False)
        for entry in entries:
            key = KEY_PREFIX + entry.key
            pipe.zadd(key, {entry.member: expires_at})
            pipe.zremrangebyscore(key, "-inf", now)  # members of dead servers
            pipe.expire(key, math.ceil(expires_at - now) + 1)  # the whole set goes when nobody refreshes it
        pipe.execute()

    def remove(self, entries: Iterable[PresenceEntry]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for entry in entries:
            pipe.zrem(KEY_PREFIX + entry.key, entry.member)
        pipe.execute()

    def members(self, key: str, *, now: float) -> list[str]:
        return [member.decode() for member in self.client.zrangebyscore(KEY_PREFIX + key, f"({now}", "+inf")]

    def count(self, key: str, *, now: float) -> int:
        return self.client.zcount(KEY_PREFIX + key, f"({now}", "+inf")


class _MemoryStore:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sets: dict[str, dict[str, float]] = {}

    def put(self, entries: Iterable[PresenceEntry], *, expires_at: float, now: float) -> None:
        with self.lock:
            for entry in entries:
                members = self.sets.setdefault(entry.key, {})
                members[entry.member] = expires_at
                for member, expiry in list(members.items()):
                    if expiry <= now:
                        del members[member]

    def remove(self, entries: Iterable[PresenceEntry]) -> None:
        with self.lock:
            for entry in entries:
                self.sets.get(entry.key, {}).pop(entry.member, None)

    def members(self, key: str, *, now: float) -> list[str]:
        with self.lock:
            return [member for member, expiry in self.sets.get(key, {}).items() if expiry > now]

    def count(self, key: str, *, now: float) -> int:
        return len(self.members(key, now=now))


_stores: dict[str, _RedisStore | _MemoryStore] = {}
_stores_lock = threading.Lock()


def _store() -> _RedisStore | _MemoryStore:
    url = settings.REDIS_URL or ""
    with _stores_lock:
        if url not in _stores:
            _stores[url] = _RedisStore(url) if url else _MemoryStore()
        return _stores[url]


def _visitor_key(visitor_public_id) -> str:
    return f"visitor:{uuid.UUID(str(visitor_public_id)).hex}"


def _viewers_key(ticket_id: int) -> str:
    return f"ticket:{int(ticket_id)}:viewers"


# --- Writes (the consumers') -----------------------------------------------------------------------------------


def agent_presence_join(*, user_id: int, connection_id: str) -> PresenceEntry:
    entry = PresenceEntry(key=_AGENTS_KEY, member=f"{int(user_id)}:{connection_id}")
    presence_refresh(entries=[entry])
    return entry


def visitor_presence_join(*, visitor_public_id, connection_id: str) -> PresenceEntry:
    entry = PresenceEntry(key=_visitor_key(visitor_public_id), member=connection_id)
    presence_refresh(entries=[entry])
    return entry


def ticket_viewer_join(*, ticket_id: int, user_id: int, name: str, connection_id: str) -> PresenceEntry:
    """The agent's connection views the ticket (collision detection in the console)."""
    entry = PresenceEntry(key=_viewers_key(ticket_id), member=f"{int(user_id)}:{connection_id}:{name}")
    presence_refresh(entries=[entry])
    return entry


def presence_refresh(*, entries: Iterable[PresenceEntry]) -> None:
    """(Re)start the TTL of each entry: on join and on every heartbeat."""
    entries = list(entries)
    if not entries:
        return
    now = _now()
    try:
        _store().put(entries, expires_at=now + TTL_SECONDS, now=now)
    except redis.RedisError:
        logger.warning("realtime.presence_write_failed", exc_info=True)


def presence_leave(*, entries: Iterable[PresenceEntry]) -> None:
    entries = list(entries)
    if not entries:
        return
    try:
        _store().remove(entries)
    except redis.RedisError:
        logger.warning("realtime.presence_write_failed", exc_info=True)


# --- Reads -----------------------------------------------------------------------------------------------------


def agent_ids_online() -> set[int]:
    try:
        members = _store().members(_AGENTS_KEY, now=_now())
    except redis.RedisError:
        logger.warning("realtime.presence_read_failed", exc_info=True)
        return set()
    return {int(member.split(":", 1)[0]) for member in members}


def agents_online(*, channel=None) -> bool:
    """Whether any agent is connected who could answer a chat on ``channel``: with a default team, one of its
    members or an administrator (who see every ticket); otherwise any agent."""
    user_ids = agent_ids_online()
    if not user_ids:
        return False
    team_id = getattr(channel, "default_team_id", None)
    if team_id is None:
        return True
    return (
        get_user_model()
        .objects.filter(pk__in=user_ids, is_active=True)
        .filter(Q(is_superuser=True) | Q(agent_profile__role=AgentProfile.Role.ADMIN) | Q(agent_profile__teams=team_id))
        .exists()
    )


def visitor_is_online(*, visitor_public_id) -> bool:
    """Whether the chat visitor has a widget connection open now."""
    try:
        return _store().count(_visitor_key(visitor_public_id), now=_now()) > 0
    except redis.RedisError:
        logger.warning("realtime.presence_read_failed", exc_info=True)
        return False


def ticket_viewers(*, ticket_id: int) -> list[dict]:
    """The agents viewing the ticket now, once each (several tabs are one viewer), by id."""
    try:
        members = _store().members(_viewers_key(ticket_id), now=_now())
    except redis.RedisError:
        logger.warning("realtime.presence_read_failed", exc_info=True)
        return []
    viewers: dict[int, str] = {}
    for member in members:
        user_id, _connection, name = member.split(":", 2)
        viewers[int(user_id)] = name
    return [{"id": user_id, "name": name} for user_id, name in sorted(viewers.items())]
