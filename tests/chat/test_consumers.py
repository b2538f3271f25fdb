"""The widget's websocket (chat/consumers.py) on the Redis channel layer: who may connect, what a visitor
receives (their own conversation only, after commit), typing and read receipts both ways, presence."""

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from channels_app.models import Channel
from channels_app.services.channels import channel_create
from chat.models import ChatVisitor
from chat.services.messages import visitor_message_post
from chat.services.visitors import visitor_session_start
from chat.tokens import visitor_token_sign
from realtime.presence import visitor_is_online
from tests.factories import AgentFactory
from tests.realtime.fixtures import (
    QUIET,
    SHOP_ORIGIN,
    agent_socket,
    assert_refused,
    connect,
    receive,
    redis_layer,  # noqa: F401
    run,
    session_cookie,
    visitor_socket,
)
from tickets.models import Message
from tickets.services.replies import note_create, reply_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_layer")]


class Rollback(Exception):
    pass


def start_visitor(channel: Channel, *, name: str = "Vera") -> tuple[ChatVisitor, str]:
    visitor, _ = visitor_session_start(channel=channel, name=name, origin=SHOP_ORIGIN)
    return visitor, visitor_token_sign(visitor_public_id=visitor.public_id, channel_id=channel.pk)


def say(visitor: ChatVisitor, text: str, client_id: str) -> Message:
    message, _ = visitor_message_post(visitor=visitor, client_id=client_id, text=text)
    return message


def reply(message: Message, agent, text: str) -> Message:
    return reply_create(ticket=message.ticket, author=agent, text=text)


def test_visitor_receives_the_agent_reply_once_it_commits(chat_channel):
    visitor, token = start_visitor(chat_channel)
    agent = AgentFactory(profile__display_name="Dora")

    async def scenario():
        socket = visitor_socket(public_key=chat_channel.public_key, token=token)
        await connect(socket)
        assert await receive(socket) == {"type": "presence", "agents_online": False}

        asked = await database_sync_to_async(say)(visitor, "Where is my parcel?", "c-1")
        own = await receive(socket)
        assert own["type"] == "message"
        assert own["message"]["id"] == asked.pk
        assert own["message"]["direction"] == "inbound"
        assert own["message"]["text"] == "Where is my parcel?"

        def rolled_back_reply():
            with pytest.raises(Rollback), transaction.atomic():
                reply(asked, agent, "Never sent")
                raise Rollback

        await database_sync_to_async(rolled_back_reply)()
        assert await socket.receive_nothing(timeout=QUIET)

        answer = await database_sync_to_async(reply)(asked, agent, "It left this morning.")
        pushed = await receive(socket)
        assert pushed == {
            "type": "message",
            "message": {
                "id": answer.pk,
                "ticket_id": asked.ticket_id,
                "direction": "outbound",
                "text": "It left this morning.",
                "created_at": pushed["message"]["created_at"],
                "author_name": "Dora",
                "card": "",
                "attachments": [],
            },
        }
        assert pushed["message"]["created_at"].startswith(answer.created_at.strftime("%Y-%m-%dT%H:%M:%S"))
        await socket.disconnect()

    run(scenario)


def note(message: Message, agent, text: str) -> Message:
    return note_create(ticket=message.ticket, author=agent, text=text)


def _other_channel() -> Channel:
    return channel_create(kind=Channel.Kind.CHAT, name="Other shop", settings={"allowed_origins": [SHOP_ORIGIN]})


@pytest.mark.parametrize(
    "case",
    ["forged token", "tampered token", "other channel's token", "disallowed origin", "missing origin", "unknown key"],
)
def test_refused_connections_close_with_4403(chat_channel, case):
    visitor, token = start_visitor(chat_channel)
    public_key, origin = chat_channel.public_key, SHOP_ORIGIN
    if case == "forged token":
        token = "eyJ2IjoiMDAwIiwiYyI6MX0:1tFake:forgedsignature"
    elif case == "tampered token":
        token = token[:-2] + ("aa" if not token.endswith("aa") else "bb")
    elif case == "other channel's token":
        other = _other_channel()
        _other_visitor, token = start_visitor(other)
    elif case == "disallowed origin":
        origin = "https://evil.example"
    elif case == "missing origin":
        origin = None
    elif case == "unknown key":
        public_key = "no-such-key"

    async def scenario():
        await assert_refused(visitor_socket(public_key=public_key, token=token, origin=origin))

    run(scenario)
    assert visitor_is_online(visitor_public_id=visitor.public_id) is False


def test_a_visitor_never_receives_notes_nor_another_visitors_messages(chat_channel):
    anna, anna_token = start_visitor(chat_channel, name="Anna")
    bert, bert_token = start_visitor(chat_channel, name="Bert")
    agent = AgentFactory()

    async def scenario():
        anna_socket = visitor_socket(public_key=chat_channel.public_key, token=anna_token)
        bert_socket = visitor_socket(public_key=chat_channel.public_key, token=bert_token)
        for socket in (anna_socket, bert_socket):
            await connect(socket)
            assert (await receive(socket))["type"] == "presence"

        anna_message = await database_sync_to_async(say)(anna, "Anna here", "a-1")
        assert (await receive(anna_socket))["message"]["id"] == anna_message.pk
        bert_message = await database_sync_to_async(say)(bert, "Bert here", "b-1")
        assert (await receive(bert_socket))["message"]["id"] == bert_message.pk
        assert anna_message.ticket_id != bert_message.ticket_id

        await database_sync_to_async(note)(anna_message, agent, "VIP, be nice")
        to_bert = await database_sync_to_async(reply)(bert_message, agent, "Hello Bert")
        assert (await receive(bert_socket))["message"]["id"] == to_bert.pk

        assert await anna_socket.receive_nothing(timeout=QUIET)
        assert await bert_socket.receive_nothing(timeout=QUIET)
        for socket in (anna_socket, bert_socket):
            await socket.disconnect()

    run(scenario)


def test_typing_goes_both_ways_and_is_throttled(chat_channel):
    visitor, token = start_visitor(chat_channel, name="Vera")
    asked = say(visitor, "Hello?", "c-1")
    agent = AgentFactory(profile__display_name="Dora")
    cookie = session_cookie(agent)

    async def scenario():
        visitor_ws = visitor_socket(public_key=chat_channel.public_key, token=token)
        agent_ws = agent_socket(cookie=cookie)
        await connect(visitor_ws)
        assert await receive(visitor_ws) == {"type": "presence", "agents_online": False}
        await connect(agent_ws)
        await agent_ws.send_json_to({"type": "subscribe", "ticket_id": asked.ticket_id})
        assert (await receive(agent_ws))["type"] == "viewers"

        await visitor_ws.send_json_to({"type": "typing", "is_typing": True})
        await visitor_ws.send_json_to({"type": "typing", "is_typing": True})  # too soon: dropped
        await visitor_ws.send_json_to({"type": "typing", "is_typing": False})
        expected = {"type": "typing", "ticket_id": asked.ticket_id, "who": "visitor", "name": "Vera"}
        assert await receive(agent_ws) == {**expected, "is_typing": True}
        assert await receive(agent_ws) == {**expected, "is_typing": False}
        assert await agent_ws.receive_nothing(timeout=QUIET)

        await agent_ws.send_json_to({"type": "typing", "ticket_id": asked.ticket_id, "is_typing": True})
        assert await receive(visitor_ws) == {
            "type": "typing",
            "ticket_id": asked.ticket_id,
            "who": "agent",
            "name": "Dora",
            "is_typing": True,
        }
        assert await agent_ws.receive_nothing(timeout=QUIET)  # not its own typing back
        assert await visitor_ws.receive_nothing(timeout=QUIET)
        await visitor_ws.disconnect()
        await agent_ws.disconnect()

    run(scenario)


def test_read_receipt_is_recorded_and_reaches_the_agents(chat_channel):
    visitor, token = start_visitor(chat_channel)
    other, _other_token = start_visitor(chat_channel, name="Other")
    asked = say(visitor, "Hi", "c-1")
    not_theirs = say(other, "Mine", "o-1")
    agent = AgentFactory()
    answer = reply(asked, agent, "Hi there")
    cookie = session_cookie(agent)

    async def scenario():
        visitor_ws = visitor_socket(public_key=chat_channel.public_key, token=token)
        agent_ws = agent_socket(cookie=cookie)
        await connect(visitor_ws)
        await receive(visitor_ws)  # presence
        await connect(agent_ws)
        await agent_ws.send_json_to({"type": "subscribe", "ticket_id": asked.ticket_id})
        assert (await receive(agent_ws))["type"] == "viewers"

        await visitor_ws.send_json_to({"type": "read", "up_to": not_theirs.pk})
        assert await receive(visitor_ws) == {"type": "error", "code": "not_found", "detail": "No such message."}
        await visitor_ws.send_json_to({"type": "read", "up_to": answer.pk})
        assert await receive(agent_ws) == {
            "type": "read",
            "ticket_id": asked.ticket_id,
            "who": "visitor",
            "up_to": answer.pk,
        }
        await visitor_ws.disconnect()
        await agent_ws.disconnect()

    run(scenario)
    visitor.refresh_from_db()
    other.refresh_from_db()
    assert visitor.visitor_read_up_to == answer.pk
    assert other.visitor_read_up_to is None


def test_an_agents_read_receipt_reaches_the_visitor_and_only_moves_forward(chat_channel):
    visitor, token = start_visitor(chat_channel)
    other, _other_token = start_visitor(chat_channel, name="Other")
    first = say(visitor, "Hi", "c-1")
    second = say(visitor, "Are you there?", "c-2")
    not_this_ticket = say(other, "Mine", "o-1")
    agent = AgentFactory()
    cookie = session_cookie(agent)

    async def scenario():
        visitor_ws = visitor_socket(public_key=chat_channel.public_key, token=token)
        agent_ws = agent_socket(cookie=cookie)
        await connect(visitor_ws)
        await receive(visitor_ws)  # presence
        await connect(agent_ws)
        await agent_ws.send_json_to({"type": "subscribe", "ticket_id": second.ticket_id})
        assert (await receive(agent_ws))["type"] == "viewers"

        # A message of another ticket is refused, and nothing is recorded
        await agent_ws.send_json_to({"type": "read", "ticket_id": second.ticket_id, "up_to": not_this_ticket.pk})
        assert (await receive(agent_ws))["code"] == "not_found"
        await agent_ws.send_json_to({"type": "read", "ticket_id": second.ticket_id, "up_to": second.pk})
        assert await receive(visitor_ws) == {
            "type": "read",
            "ticket_id": second.ticket_id,
            "who": "agent",
            "up_to": second.pk,
        }
        # A late receipt for an earlier message (another agent's tab) changes nothing and tells nobody
        await agent_ws.send_json_to({"type": "read", "ticket_id": second.ticket_id, "up_to": first.pk})
        assert await visitor_ws.receive_nothing(timeout=QUIET)
        await visitor_ws.disconnect()
        await agent_ws.disconnect()

    run(scenario)
    visitor.refresh_from_db()
    other.refresh_from_db()
    assert visitor.agent_read_up_to == second.pk
    assert other.agent_read_up_to is None


def test_visitor_presence_follows_the_connections(chat_channel):
    visitor, token = start_visitor(chat_channel)

    async def scenario():
        first = visitor_socket(public_key=chat_channel.public_key, token=token)
        second = visitor_socket(public_key=chat_channel.public_key, token=token)
        await connect(first)
        await connect(second)
        assert await database_sync_to_async(visitor_is_online)(visitor_public_id=visitor.public_id) is True
        await first.disconnect()
        assert await database_sync_to_async(visitor_is_online)(visitor_public_id=visitor.public_id) is True
        await second.disconnect()
        assert await database_sync_to_async(visitor_is_online)(visitor_public_id=visitor.public_id) is False

    run(scenario)
