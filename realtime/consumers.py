"""Websocket consumers: the agents' live connection (``ws/agent/``) and what every consumer shares.

Consumers authenticate, join groups and relay; they never write to the database themselves (read receipts go
through the services of the audiences: ``realtime.audiences``). A refused connection is accepted and then closed with
code 4403, so a browser sees the code (a refused handshake shows only 1006) and the client knows not to retry with
the same credentials.

An agent's connection sees what the agent may see at that moment, not when it opened: every connection of an agent
is in the agent's group, where the services that change the agent's access send ``access_changed`` on commit
(and the heartbeat does every ``HEARTBEAT_SECONDS``, for a change made around the services, in the Django admin);
the connection then reads the access again, closes with 4403 if they are no longer an active agent, and leaves each
ticket they may no longer see. A ``ticket`` event that moves a subscribed ticket out of the agent's sight does the
same for that ticket. Leaving a ticket removes the connection's viewer entry, tells the other viewers, and drops
whatever of the ticket's group was still on its way.

Server -> agent events: ``message``, ``ticket`` (a ticket's fields changed), ``typing``, ``read``, ``viewers``
(see realtime/publish.py for the shapes), ``unsubscribed`` (``{"type": "unsubscribed", "ticket_id"}``: the
agent may no longer see a ticket they followed; the server has left it) and ``error`` (``{"type": "error",
"code", "detail", "ticket_id"?}``: an unknown request, or a ticket that does not exist or that the agent may not
see, alike). Frames that are not requests at all are answered as realtime/frames.py says (an error frame, or a
close with 1003 or 1009); a request whose handling fails closes with 1011, never with an exception. Presence
is released whichever way the connection ends.
"""

import asyncio
import contextlib
import logging
import time
import uuid

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from helpdesk.errors import NotFound
from realtime.audiences import ticket_agent_read, ticket_audience_groups
from realtime.frames import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED_DATA,
    MAX_FRAME_CHARS,
    InvalidFrame,
    frame_parse,
)
from realtime.groups import AGENTS, agent_group, group_ticket_id, ticket_group
from realtime.origins import agent_origin_is_allowed
from realtime.presence import (
    HEARTBEAT_SECONDS,
    PresenceEntry,
    agent_presence_join,
    presence_leave,
    presence_refresh,
    ticket_viewer_join,
    ticket_viewers,
)
from realtime.publish import ACCESS_CHANGED, EVENT_TYPE, realtime_send
from realtime.selectors import AgentAccess, AgentViewer, agent_access_load
from tickets.selectors.tickets import ticket_get_for_agent, ticket_ids_visible

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
MAX_SUBSCRIPTIONS = 50  # tickets one agent connection follows at once (open tabs of the console)
# Between consumers only: "the viewers of this ticket changed"; each connection sends its client the list as it is now.
VIEWERS_CHANGED = "viewers_changed"


class TypingThrottle:
    """Typing indicators, at most a few per second whatever a client sends: a start passes when the previous one
    is ``START_INTERVAL`` old (a refresh while typing goes on every ``REFRESH_INTERVAL``), a stop only after a
    start. Clients let an indicator lapse by themselves after a few seconds, so a dropped one does no harm."""

    START_INTERVAL = 0.5
    REFRESH_INTERVAL = 3.0

    def __init__(self) -> None:
        self.is_typing = False
        self.sent_at = -1e9

    def allow(self, is_typing: bool) -> bool:
        now = time.monotonic()
        if not is_typing:
            allowed = self.is_typing
        elif self.is_typing:
            allowed = now - self.sent_at >= self.REFRESH_INTERVAL
        else:
            allowed = now - self.sent_at >= self.START_INTERVAL
        if allowed:
            self.is_typing = is_typing
            self.sent_at = now if is_typing else self.sent_at
        return allowed


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    """Joined groups and presence entries, kept alive by a heartbeat and released however the connection ends (a
    close by either side, or an error: the heartbeat must not keep a dead connection's presence alive)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.connection_id = uuid.uuid4().hex
        self.joined_groups: set[str] = set()
        self.presence_entries: set[PresenceEntry] = set()
        self.heartbeat: asyncio.Task | None = None
        self.is_closing = False

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.release()

    async def dispatch(self, message) -> None:
        # Channels closes the database connections of its shared sync thread before every handler, with a hop to
        # that one thread and back for each event pushed to each connection: one queue for every push of the
        # process, on the way to each agent and visitor. The realtime_event handlers reach the database only
        # through database_sync_to_async, which closes old connections in its own thread, so events skip it.
        if message.get("type") == EVENT_TYPE:
            if not self.is_closing:
                await self.realtime_event(message)
            return
        await super().dispatch(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        """A frame from the client: refused as realtime/frames.py says unless it is JSON text of a sane size."""
        if self.is_closing:
            return
        if text_data is None:
            await self.close(code=CLOSE_UNSUPPORTED_DATA)
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            content = frame_parse(text_data)
        except InvalidFrame as exc:
            await self.send_error(code="invalid_json", detail=f"Frames must be JSON text ({exc}).")
            return
        try:
            await self.receive_json(content)
        except Exception:
            logger.exception("realtime.frame_failed", extra={"connection_id": self.connection_id})
            await self.close(code=CLOSE_INTERNAL_ERROR)

    async def refuse(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_FORBIDDEN)

    async def close(self, code=None, reason=None) -> None:
        # Out of every group first: nothing more is sent to a socket that is closing (a send after the close is
        # an error of the server's).
        self.is_closing = True
        await self.release()
        await super().close(code=code, reason=reason)

    async def group_join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined_groups.add(group)

    async def group_leave(self, group: str) -> None:
        self.joined_groups.discard(group)
        await self.channel_layer.group_discard(group, self.channel_name)

    async def presence_add(self, entry: PresenceEntry) -> None:
        self.presence_entries.add(entry)
        if self.heartbeat is None:
            self.heartbeat = asyncio.create_task(self._beat())

    async def presence_remove(self, entry: PresenceEntry) -> None:
        self.presence_entries.discard(entry)
        await sync_to_async(presence_leave, thread_sensitive=False)(entries=[entry])

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await sync_to_async(presence_refresh, thread_sensitive=False)(entries=list(self.presence_entries))
            await self.heartbeat_tick()

    async def heartbeat_tick(self) -> None:
        """Every ``HEARTBEAT_SECONDS``, in the heartbeat's own task (not the consumer's): nothing by default."""

    async def disconnect(self, code) -> None:
        await self.release()

    async def release(self) -> None:
        """Stop the heartbeat, remove the presence entries, leave the groups. Idempotent: runs on close, on
        disconnect and when the consumer ends for any reason."""
        self.is_closing = True
        heartbeat, self.heartbeat = self.heartbeat, None
        if heartbeat is not None and heartbeat is not asyncio.current_task():
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        if self.presence_entries:
            entries, self.presence_entries = list(self.presence_entries), set()
            await sync_to_async(presence_leave, thread_sensitive=False)(entries=entries)
        for group in list(self.joined_groups):
            with contextlib.suppress(Exception):  # Redis gone: its groups expire by themselves
                await self.group_leave(group)

    async def send_error(self, *, code: str, detail: str, **extra) -> None:
        await self.send_json({"type": "error", "code": code, "detail": detail, **extra})

    async def realtime_event(self, message: dict) -> None:
        """A ``realtime.event`` from a group (realtime/publish.py)."""
        if message.get("sender") == self.channel_name:
            return  # this connection's own typing
        await self.send_json(message["event"])


class AgentConsumer(RealtimeConsumer):
    """``ws/agent/``: a signed-in agent's console. Joins the agent's own group (access changes), AGENTS (new
    messages everywhere, filtered to what the agent may see) and, on request and after the access check, the groups
    of the tickets they open."""

    # A ticket left because the agent lost sight of it: how many of these the connection remembers, to drop the
    # AGENTS copy of the event that moved it (it came through the ticket's group already).
    LEFT_REMEMBERED = 50

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.access: AgentAccess | None = None
        self.agent: AgentViewer | None = None
        self.subscriptions: dict[int, tuple[int, PresenceEntry]] = {}  # ticket id -> (customer id, viewer entry)
        self.typing: dict[int, TypingThrottle] = {}
        self.left_versions: dict[int, int] = {}  # ticket id -> version of the event that made the agent leave it

    async def connect(self) -> None:
        if not agent_origin_is_allowed(header(self.scope, b"origin"), host=header(self.scope, b"host")):
            await self.refuse()
            return
        user = self.scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            await self.refuse()
            return
        # The agent's group before their access is read: a deactivation that commits after the read is heard
        # here, one before it is seen by the read. The user the session middleware loaded may be older than both.
        await self.group_join(agent_group(user.pk))
        self.access = await database_sync_to_async(agent_access_load)(user_id=user.pk)
        if self.access is None:
            await self.refuse()
            return
        self.agent = self.access.viewer
        # Groups and presence before accepting: once the client sees the socket open, it misses nothing.
        await self.group_join(AGENTS)
        entry = await sync_to_async(agent_presence_join, thread_sensitive=False)(
            user_id=self.agent.user_id, connection_id=self.connection_id
        )
        await self.presence_add(entry)
        await self.accept()

    async def release(self) -> None:
        subscribed = list(self.subscriptions)
        self.subscriptions.clear()
        await super().release()
        for ticket_id in subscribed:
            with contextlib.suppress(Exception):  # best-effort, like every push
                await self._viewers_publish(ticket_id)

    async def heartbeat_tick(self) -> None:
        # Through the consumer's own channel, so the access is read again between two events, never during one.
        with contextlib.suppress(Exception):
            await self.channel_layer.send(self.channel_name, {"type": EVENT_TYPE, "event": {"type": ACCESS_CHANGED}})

    async def receive_json(self, content, **kwargs) -> None:
        if self.agent is None:
            return
        kind = content.get("type") if isinstance(content, dict) else None
        ticket_id = content.get("ticket_id") if isinstance(content, dict) else None
        if kind not in ("subscribe", "unsubscribe", "typing", "read") or not _is_id(ticket_id):
            await self.send_error(code="bad_request", detail="Unknown or malformed request.")
            return
        if kind == "subscribe":
            await self._subscribe(ticket_id)
        elif ticket_id not in self.subscriptions:
            await self.send_error(code="not_subscribed", detail="Subscribe to the ticket first.", ticket_id=ticket_id)
        elif kind == "unsubscribe":
            await self._unsubscribe(ticket_id)
        elif kind == "typing":
            await self._typing(ticket_id, is_typing=bool(content.get("is_typing")))
        else:
            await self._read(ticket_id, up_to=content.get("up_to"))

    async def realtime_event(self, message: dict) -> None:
        if self.agent is None:
            return
        event = message["event"]
        kind = event.get("type")
        if kind == ACCESS_CHANGED:
            await self._access_reload()
            return
        group = message.get("group")
        group_ticket = group_ticket_id(group) if group else None
        if group_ticket is not None and group_ticket not in self.subscriptions:
            return  # a ticket this connection left (or was refused): what was on its way stays behind
        audience = message.get("audience")
        ticket_id = _event_ticket_id(event)
        if ticket_id in self.subscriptions and not self.agent.may_see_current(audience):
            # The ticket moved out of the agent's sight (another team, another assignee): they learn where it went
            # (it leaves their queue) and follow it no further. Whichever copy comes first (the ticket's group's or
            # AGENTS') does it; the other is dropped.
            if self.agent.may_see(audience):
                await super().realtime_event(message)
            if kind == "ticket":
                self._left_remember(ticket_id, event["ticket"].get("version"))
            await self._leave(ticket_id)
            return
        if not self.agent.may_see(audience):
            return
        if group == AGENTS and ticket_id in self.subscriptions:
            return  # it comes through the ticket's group too: once is enough
        if group == AGENTS and kind == "ticket" and _is_left_event(self.left_versions, event):
            del self.left_versions[ticket_id]
            return  # the event that made this connection leave the ticket: sent already, from the ticket's group
        if kind == VIEWERS_CHANGED:
            if event.get("ticket_id") in self.subscriptions:
                await self._viewers_send(event["ticket_id"])
            return
        await super().realtime_event(message)

    async def _access_reload(self) -> None:
        access = await database_sync_to_async(agent_access_load)(user_id=self.agent.user_id)
        if access is None:
            logger.info("realtime.agent_connection_revoked", extra={"user_id": self.agent.user_id})
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.access, self.agent = access, access.viewer
        if not self.subscriptions:
            return
        subscribed = list(self.subscriptions)
        visible = await database_sync_to_async(ticket_ids_visible)(user=access.user, ticket_ids=subscribed)
        for ticket_id in [ticket_id for ticket_id in self.subscriptions if ticket_id not in visible]:
            await self._leave(ticket_id)

    async def _subscribe(self, ticket_id: int) -> None:
        if ticket_id in self.subscriptions:
            return
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            await self.send_error(code="too_many_subscriptions", detail="Too many open tickets.", ticket_id=ticket_id)
            return
        # In the ticket's group before the access check: a team change that commits after the check reaches this
        # connection through the group (and makes it leave); one before it is seen by the check.
        await self.group_join(ticket_group(ticket_id))
        try:
            ticket = await database_sync_to_async(ticket_get_for_agent)(user=self.access.user, ticket_id=ticket_id)
        except NotFound:
            await self.group_leave(ticket_group(ticket_id))
            await self.send_error(code="not_found", detail="No such ticket.", ticket_id=ticket_id)
            return
        entry = await sync_to_async(ticket_viewer_join, thread_sensitive=False)(
            ticket_id=ticket.pk, user_id=self.agent.user_id, name=self.agent.name, connection_id=self.connection_id
        )
        self.subscriptions[ticket.pk] = (ticket.customer_id, entry)
        self.left_versions.pop(ticket.pk, None)
        await self.presence_add(entry)
        await self._viewers_publish(ticket.pk)

    async def _unsubscribe(self, ticket_id: int) -> None:
        _customer_id, entry = self.subscriptions.pop(ticket_id)
        self.typing.pop(ticket_id, None)
        await self.group_leave(ticket_group(ticket_id))
        await self.presence_remove(entry)
        await self._viewers_publish(ticket_id)

    async def _leave(self, ticket_id: int) -> None:
        """The agent may no longer see the ticket: unsubscribed by the server, and the client told so."""
        await self._unsubscribe(ticket_id)
        logger.info("realtime.ticket_left", extra={"user_id": self.agent.user_id, "ticket_id": ticket_id})
        await self.send_json({"type": "unsubscribed", "ticket_id": ticket_id})

    def _left_remember(self, ticket_id: int, version: int) -> None:
        self.left_versions[ticket_id] = version
        while len(self.left_versions) > self.LEFT_REMEMBERED:
            del self.left_versions[next(iter(self.left_versions))]

    async def _typing(self, ticket_id: int, *, is_typing: bool) -> None:
        if not self.typing.setdefault(ticket_id, TypingThrottle()).allow(is_typing):
            return
        customer_id, _entry = self.subscriptions[ticket_id]
        audience_groups = await database_sync_to_async(ticket_audience_groups)(
            ticket_id=ticket_id, customer_id=customer_id
        )
        event = {
            "type": "typing",
            "ticket_id": ticket_id,
            "who": "agent",
            "name": self.agent.name,
            "is_typing": is_typing,
        }
        await realtime_send(groups=[ticket_group(ticket_id), *audience_groups], event=event, sender=self.channel_name)

    async def _read(self, ticket_id: int, *, up_to) -> None:
        if not _is_id(up_to):
            await self.send_error(code="bad_request", detail="up_to must be a message id.", ticket_id=ticket_id)
            return
        customer_id, _entry = self.subscriptions[ticket_id]
        try:
            await database_sync_to_async(ticket_agent_read)(ticket_id=ticket_id, customer_id=customer_id, up_to=up_to)
        except NotFound:
            await self.send_error(code="not_found", detail="No such message on this ticket.", ticket_id=ticket_id)

    async def _viewers_publish(self, ticket_id: int) -> None:
        # A notice, not the list: each connection reads the viewers when the notice reaches it. Lists read by two
        # connections and sent by each were not ordered, so a list read just before an agent left could arrive
        # after the one sent for the leave and show them viewing for good. A read after the last change is right.
        await realtime_send(groups=[ticket_group(ticket_id)], event={"type": VIEWERS_CHANGED, "ticket_id": ticket_id})

    async def _viewers_send(self, ticket_id: int) -> None:
        agents = await sync_to_async(ticket_viewers, thread_sensitive=False)(ticket_id=ticket_id)
        await self.send_json({"type": "viewers", "ticket_id": ticket_id, "agents": agents})


def _event_ticket_id(event: dict) -> int | None:
    """The ticket an AGENTS event is about (``message`` and ``ticket`` events), else None."""
    if event.get("type") == "message":
        return event["message"]["ticket_id"]
    if event.get("type") == "ticket":
        return event["ticket"]["id"]
    return None


def _is_left_event(left_versions: dict[int, int], event: dict) -> bool:
    ticket = event["ticket"]
    return ticket["id"] in left_versions and left_versions[ticket["id"]] == ticket.get("version")


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63
