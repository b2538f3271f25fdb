"""The chat widget's websocket: ``chat/ws/<public_key>/?token=<visitor token>``.

Pushes the visitor's own conversation (messages, the agents' typing and read receipts) and relays the visitor's
typing and read receipts. The page's Origin must be one of the channel's ``allowed_origins`` and the token one
issued for this channel (``chat.tokens``); otherwise the socket is closed with 4403 before anything is sent.
"""

from dataclasses import dataclass
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from chat.cors import origin_is_allowed
from chat.models import ChatVisitor
from chat.selectors import chat_channel_get, chat_visitor_get, visitor_current_ticket_id
from chat.services.messages import visitor_read_mark
from chat.tokens import visitor_token_verify
from helpdesk.errors import NotFound
from realtime.consumers import RealtimeConsumer, TypingThrottle, header
from realtime.groups import ticket_group, visitor_group
from realtime.presence import agents_online, visitor_presence_join
from realtime.publish import realtime_send

VISITOR_EVENT_TYPES = frozenset({"message", "typing", "read", "presence"})


@dataclass(frozen=True)
class VisitorConnection:
    visitor: ChatVisitor
    ticket_id: int | None
    agents_online: bool


def visitor_connection_open(*, public_key: str, token: str, origin: str | None) -> VisitorConnection | None:
    """The visitor a widget connection is for, or None: no such active chat channel, an Origin not on its list, or
    a token that is forged, expired, of another channel or of a visitor that no longer exists."""
    channel = chat_channel_get(public_key=public_key)
    if channel is None or not origin_is_allowed(channel=channel, origin=origin):
        return None
    public_id = visitor_token_verify(token=token, channel=channel)
    if public_id is None:
        return None
    visitor = chat_visitor_get(channel=channel, public_id=public_id)
    if visitor is None:
        return None
    return VisitorConnection(
        visitor=visitor,
        ticket_id=visitor_current_ticket_id(visitor=visitor),
        agents_online=agents_online(channel=channel),
    )


class VisitorConsumer(RealtimeConsumer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.visitor: ChatVisitor | None = None
        self.ticket_id: int | None = None
        self.typing = TypingThrottle()

    async def connect(self) -> None:
        token = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        opened = await database_sync_to_async(visitor_connection_open)(
            public_key=self.scope["url_route"]["kwargs"]["public_key"],
            token=token,
            origin=header(self.scope, b"origin"),
        )
        if opened is None:
            await self.refuse()
            return
        self.visitor, self.ticket_id = opened.visitor, opened.ticket_id
        # Groups and presence before accepting: once the widget sees the socket open, it misses nothing.
        await self.group_join(visitor_group(self.visitor.public_id))
        entry = await sync_to_async(visitor_presence_join, thread_sensitive=False)(
            visitor_public_id=self.visitor.public_id, connection_id=self.connection_id
        )
        await self.presence_add(entry)
        await self.accept()
        await self.send_json({"type": "presence", "agents_online": opened.agents_online})

    async def receive_json(self, content, **kwargs) -> None:
        if self.visitor is None:
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "typing":
            await self._typing(is_typing=bool(content.get("is_typing")))
        elif kind == "read":
            await self._read(content.get("up_to"))
        else:
            await self.send_error(code="bad_request", detail="Unknown or malformed request.")

    async def realtime_event(self, message: dict) -> None:
        event = message["event"]
        if event.get("type") not in VISITOR_EVENT_TYPES:
            return
        if event["type"] == "message":
            # The conversation may have moved to a new ticket (the last one was solved): typing follows it.
            self.ticket_id = event["message"]["ticket_id"]
        await super().realtime_event(message)

    async def _typing(self, *, is_typing: bool) -> None:
        if self.ticket_id is None or not self.typing.allow(is_typing):
            return  # before their first message there is no ticket, and no agent to tell
        event = {
            "type": "typing",
            "ticket_id": self.ticket_id,
            "who": "visitor",
            "name": self.visitor.name,
            "is_typing": is_typing,
        }
        await realtime_send(groups=[ticket_group(self.ticket_id)], event=event, sender=self.channel_name)

    async def _read(self, up_to) -> None:
        if not isinstance(up_to, int) or isinstance(up_to, bool) or not 0 < up_to < 2**63:
            await self.send_error(code="bad_request", detail="up_to must be a message id.")
            return
        try:
            # The service records it (forward only) and tells the ticket's agents after commit.
            await database_sync_to_async(visitor_read_mark)(visitor=self.visitor, up_to=up_to)
        except NotFound:
            await self.send_error(code="not_found", detail="No such message.")
