"""The agents' websocket (realtime/consumers.py) on the Redis channel layer: who may connect, ticket
subscriptions behind the access check, what an agent receives (only tickets they may see), viewers."""

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from agents.models import AgentProfile
from realtime.groups import ticket_group
from realtime.presence import agent_ids_online, presence_leave, ticket_viewer_join
from realtime.publish import realtime_send
from tests.factories import AgentFactory, TeamFactory, TicketFactory, UserFactory
from tests.realtime.fixtures import (
    QUIET,
    agent_socket,
    assert_refused,
    connect,
    receive,
    redis_layer,  # noqa: F401
    run,
    session_cookie,
)
from tickets.services.replies import note_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_layer")]


def team_agent(team, **kwargs):
    agent = AgentFactory(**kwargs)
    agent.agent_profile.teams.add(team)
    return agent


@pytest.mark.parametrize("case", ["no session", "not an agent", "inactive agent", "foreign origin", "no origin"])
def test_refused_connections_close_with_4403(case):
    agent = AgentFactory()
    cookie, origin = session_cookie(agent), None
    if case == "no session":
        cookie = None
    elif case == "not an agent":
        cookie = session_cookie(UserFactory())
    elif case == "inactive agent":
        type(agent).objects.filter(pk=agent.pk).update(is_active=False)
    elif case == "foreign origin":
        origin = "https://evil.example"
    elif case == "no origin":
        origin = ""

    async def scenario():
        await assert_refused(agent_socket(cookie=cookie, origin=origin))

    run(scenario)
    assert agent_ids_online() == set()


def test_agent_gets_new_messages_of_tickets_they_may_see_only():
    billing, shipping = TeamFactory(name="Billing"), TeamFactory(name="Shipping")
    agent = team_agent(billing)
    colleague = team_agent(shipping)
    visible, hidden = TicketFactory(team=billing), TicketFactory(team=shipping)
    cookie = session_cookie(agent)

    async def scenario():
        socket = agent_socket(cookie=cookie)
        await connect(socket)
        assert await database_sync_to_async(agent_ids_online)() == {agent.pk}
        await database_sync_to_async(note_create)(ticket=hidden, author=colleague, text="shipping only")
        seen = await database_sync_to_async(note_create)(ticket=visible, author=agent, text="billing note")
        event = await receive(socket)
        assert event["type"] == "message"
        assert event["message"]["id"] == seen.pk
        assert event["message"]["direction"] == "note"
        assert event["message"]["text"] == "billing note"
        assert await socket.receive_nothing(timeout=QUIET)
        await socket.disconnect()
        assert await database_sync_to_async(agent_ids_online)() == set()

    run(scenario)


@pytest.mark.parametrize("which", ["another team's ticket", "no such ticket"])
def test_subscribing_to_a_ticket_they_may_not_see_is_an_error_and_subscribes_nothing(which):
    billing, shipping = TeamFactory(), TeamFactory()
    agent = team_agent(billing)
    colleague = team_agent(shipping)
    hidden = TicketFactory(team=shipping)
    ticket_id = hidden.pk if which == "another team's ticket" else hidden.pk + 1000
    cookie, colleague_cookie = session_cookie(agent), session_cookie(colleague)

    async def scenario():
        socket = agent_socket(cookie=cookie)
        other = agent_socket(cookie=colleague_cookie)
        await connect(socket)
        await connect(other)
        await socket.send_json_to({"type": "subscribe", "ticket_id": ticket_id})
        # The same answer whether the ticket exists or not: nothing to learn about other teams' tickets.
        assert await receive(socket) == {
            "type": "error",
            "code": "not_found",
            "detail": "No such ticket.",
            "ticket_id": ticket_id,
        }
        await other.send_json_to({"type": "subscribe", "ticket_id": hidden.pk})
        assert (await receive(other))["agents"] == [{"id": colleague.pk, "name": colleague.agent_profile.display_name}]
        await other.send_json_to({"type": "typing", "ticket_id": hidden.pk, "is_typing": True})
        await database_sync_to_async(note_create)(ticket=hidden, author=colleague, text="secret")
        assert (await receive(other))["type"] == "message"
        await socket.send_json_to({"type": "typing", "ticket_id": hidden.pk, "is_typing": True})
        assert await receive(socket) == {
            "type": "error",
            "code": "not_subscribed",
            "detail": "Subscribe to the ticket first.",
            "ticket_id": hidden.pk,
        }
        assert await socket.receive_nothing(timeout=QUIET)
        await socket.disconnect()
        await other.disconnect()

    run(scenario)


def test_viewers_of_a_ticket_and_a_subscribed_agent_gets_each_message_once():
    ticket = TicketFactory()
    dora = AgentFactory(profile__display_name="Dora")
    eric = AgentFactory(profile__display_name="Eric")
    admin = AgentFactory(profile__display_name="Ada", profile__role=AgentProfile.Role.ADMIN)
    dora_cookie, eric_cookie = session_cookie(dora), session_cookie(eric)

    async def scenario():
        dora_ws, eric_ws, eric_tab = (
            agent_socket(cookie=dora_cookie),
            agent_socket(cookie=eric_cookie),
            agent_socket(cookie=eric_cookie),
        )
        for socket in (dora_ws, eric_ws, eric_tab):
            await connect(socket)
        await dora_ws.send_json_to({"type": "subscribe", "ticket_id": ticket.pk})
        assert await receive(dora_ws) == {
            "type": "viewers",
            "ticket_id": ticket.pk,
            "agents": [{"id": dora.pk, "name": "Dora"}],
        }
        both = [{"id": dora.pk, "name": "Dora"}, {"id": eric.pk, "name": "Eric"}]
        await eric_ws.send_json_to({"type": "subscribe", "ticket_id": ticket.pk})
        for socket in (dora_ws, eric_ws):
            assert await receive(socket) == {"type": "viewers", "ticket_id": ticket.pk, "agents": both}
        await eric_tab.send_json_to({"type": "subscribe", "ticket_id": ticket.pk})  # a second tab: same viewers
        for socket in (dora_ws, eric_ws, eric_tab):
            assert await receive(socket) == {"type": "viewers", "ticket_id": ticket.pk, "agents": both}

        note = await database_sync_to_async(note_create)(ticket=ticket, author=admin, text="heads up")
        for socket in (dora_ws, eric_ws, eric_tab):
            assert (await receive(socket))["message"]["id"] == note.pk
            assert await socket.receive_nothing(timeout=QUIET)  # not a second time through AGENTS

        await dora_ws.send_json_to({"type": "typing", "ticket_id": ticket.pk, "is_typing": True})
        typing = {"type": "typing", "ticket_id": ticket.pk, "who": "agent", "name": "Dora", "is_typing": True}
        assert await receive(eric_ws) == typing
        assert await receive(eric_tab) == typing
        assert await dora_ws.receive_nothing(timeout=QUIET)

        await eric_ws.send_json_to({"type": "unsubscribe", "ticket_id": ticket.pk})
        for socket in (dora_ws, eric_tab):
            assert await receive(socket) == {"type": "viewers", "ticket_id": ticket.pk, "agents": both}
        await eric_tab.disconnect()
        assert await receive(dora_ws) == {
            "type": "viewers",
            "ticket_id": ticket.pk,
            "agents": [{"id": dora.pk, "name": "Dora"}],
        }
        assert await eric_ws.receive_nothing(timeout=QUIET)
        await dora_ws.disconnect()
        await eric_ws.disconnect()

    run(scenario)


def test_malformed_requests_get_an_error():
    cookie = session_cookie(AgentFactory())

    async def scenario():
        socket = agent_socket(cookie=cookie)
        await connect(socket)
        for request in ({"type": "subscribe", "ticket_id": "1"}, {"type": "dance", "ticket_id": 1}, [1, 2]):
            await socket.send_json_to(request)
            assert await receive(socket) == {
                "type": "error",
                "code": "bad_request",
                "detail": "Unknown or malformed request.",
            }
        await socket.disconnect()

    run(scenario)


def test_a_page_served_by_the_sockets_own_host_is_accepted(settings):
    # PUBLIC_BASE_URL says https://desk.example, but the agent opened the demo at http://localhost:8000.
    settings.PUBLIC_BASE_URL = "https://desk.example"
    settings.CSRF_TRUSTED_ORIGINS = ["https://desk.example"]
    cookie = session_cookie(AgentFactory())

    async def scenario():
        socket = agent_socket(cookie=cookie, origin="http://localhost:8000")
        socket.scope["headers"].append((b"host", b"localhost:8000"))
        connected, _ = await socket.connect()
        assert connected is True
        await socket.disconnect()

    run(scenario)


def test_a_late_viewers_notice_shows_the_viewers_as_they_are_when_it_arrives():
    """Notices from two connections are not ordered: one sent while an agent was still viewing may arrive after the
    one for their leave. Each connection reads the viewers when a notice reaches it, so the last list is right."""
    ticket = TicketFactory()
    dora = AgentFactory(profile__display_name="Dora")
    eric = AgentFactory(profile__display_name="Eric")
    dora_cookie = session_cookie(dora)

    async def scenario():
        dora_ws = agent_socket(cookie=dora_cookie)
        await connect(dora_ws)
        await dora_ws.send_json_to({"type": "subscribe", "ticket_id": ticket.pk})
        assert (await receive(dora_ws))["agents"] == [{"id": dora.pk, "name": "Dora"}]
        # Eric's connection joins and leaves; the notice of his joining is delivered only after his leave
        entry = await sync_to_async(ticket_viewer_join)(
            ticket_id=ticket.pk, user_id=eric.pk, name="Eric", connection_id="eric-tab"
        )
        await sync_to_async(presence_leave)(entries=[entry])
        await realtime_send(groups=[ticket_group(ticket.pk)], event={"type": "viewers_changed", "ticket_id": ticket.pk})

        assert await receive(dora_ws) == {
            "type": "viewers",
            "ticket_id": ticket.pk,
            "agents": [{"id": dora.pk, "name": "Dora"}],
        }
        await dora_ws.disconnect()

    run(scenario)


def test_pushed_events_reach_the_agent_without_a_hop_to_the_shared_sync_thread(monkeypatch):
    import channels.consumer

    hops = []
    real_close = channels.consumer.aclose_old_connections

    async def counted_close():
        hops.append(1)
        await real_close()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted_close)
    agent = AgentFactory()
    ticket = TicketFactory()
    cookie = session_cookie(agent)

    async def scenario():
        socket = agent_socket(cookie=cookie)
        await connect(socket)
        before = len(hops)
        await realtime_send(
            groups=["agents"], event={"type": "ticket", "ticket": {"id": ticket.pk}}, audience={"team_id": None}
        )
        event = await receive(socket)
        assert event["type"] == "ticket"
        assert len(hops) == before  # the event's handler ran straight from the event loop
        await socket.send_json_to({"type": "ping"})  # what the client sends still goes the usual way
        await socket.receive_json_from(timeout=2)
        assert len(hops) > before
        await socket.disconnect()

    run(scenario)


def test_an_access_change_made_around_the_services_is_seen_at_the_next_heartbeat(monkeypatch):
    # The Django admin (or a shell) deactivates the agent with no access_changed event: the heartbeat re-reads it.
    monkeypatch.setattr("realtime.consumers.HEARTBEAT_SECONDS", 0.2)
    agent = AgentFactory()
    cookie = session_cookie(agent)

    async def scenario():
        socket = agent_socket(cookie=cookie)
        await connect(socket)
        await database_sync_to_async(type(agent).objects.filter(pk=agent.pk).update)(is_active=False)
        assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
        assert await database_sync_to_async(agent_ids_online)() == set()
        await socket.disconnect()

    run(scenario)
