"""What the agent console's live behaviour relies on, over the agents' websocket on the Redis channel layer:
ticket changes (``ticket_changed_publish``) reach the agents who may see the ticket, once; viewers and typing of two
agents on one ticket; a message event says who wrote it (the console tells another agent's reply from its own)."""

import pytest
from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import F

from agents.models import AgentProfile
from realtime.publish import message_created_publish, ticket_changed_publish
from tests.factories import AgentFactory, ChannelFactory, MessageFactory, TeamFactory, TicketFactory
from tests.realtime.fixtures import (
    QUIET,
    agent_socket,
    connect,
    receive,
    redis_layer,  # noqa: F401
    run,
    session_cookie,
)
from tickets.models import Message, Ticket
from tickets.services.updates import TicketChanges, ticket_update
from timeline.types import Actor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_layer")]


class Rollback(Exception):
    pass


def team_agent(team, **kwargs):
    agent = AgentFactory(**kwargs)
    agent.agent_profile.teams.add(team)
    return agent


def ticket_change(ticket: Ticket, **fields) -> Ticket:
    """A change to the ticket's fields, committed with its publication (what ``ticket_update`` does)."""
    with transaction.atomic():
        before = Ticket.objects.select_for_update().get(pk=ticket.pk)
        Ticket.objects.filter(pk=ticket.pk).update(**fields, version=F("version") + 1)
        changed = Ticket.objects.get(pk=ticket.pk)
        ticket_changed_publish(ticket=changed, previous=before)
    return changed


def ticket_event(ticket: Ticket) -> dict:
    return {
        "type": "ticket",
        "ticket": {
            "id": ticket.pk,
            "status": ticket.status,
            "priority": ticket.priority,
            "assignee_id": ticket.assignee_id,
            "team_id": ticket.team_id,
            "version": ticket.version,
            "merged_into_id": ticket.merged_into_id,
        },
    }


def test_a_ticket_change_reaches_the_agents_who_may_see_it_and_not_another_team():
    billing, shipping = TeamFactory(name="Billing"), TeamFactory(name="Shipping")
    billing_agent = team_agent(billing)
    shipping_agent = team_agent(shipping)
    admin = AgentFactory(profile__role=AgentProfile.Role.ADMIN)
    ticket = TicketFactory(team=billing, status=Ticket.Status.OPEN)
    cookies = [session_cookie(agent) for agent in (billing_agent, shipping_agent, admin)]

    async def scenario():
        billing_ws, shipping_ws, admin_ws = (agent_socket(cookie=cookie) for cookie in cookies)
        for socket in (billing_ws, shipping_ws, admin_ws):
            await connect(socket)
        changed = await database_sync_to_async(ticket_change)(ticket, status=Ticket.Status.PENDING, priority="high")
        assert (changed.version, changed.status, changed.priority) == (2, "pending", "high")
        for socket in (billing_ws, admin_ws):
            assert await receive(socket) == ticket_event(changed)
            assert await socket.receive_nothing(timeout=QUIET)
        assert await shipping_ws.receive_nothing(timeout=QUIET)
        for socket in (billing_ws, shipping_ws, admin_ws):
            await socket.disconnect()

    run(scenario)


def test_a_ticket_moved_to_another_team_is_told_to_both_teams_and_the_third_hears_nothing():
    billing, shipping, sales = TeamFactory(), TeamFactory(), TeamFactory()
    agents = [team_agent(team) for team in (billing, shipping, sales)]
    ticket = TicketFactory(team=billing)
    cookies = [session_cookie(agent) for agent in agents]

    async def scenario():
        sockets = [agent_socket(cookie=cookie) for cookie in cookies]
        for socket in sockets:
            await connect(socket)
        billing_ws, shipping_ws, sales_ws = sockets
        moved = await database_sync_to_async(ticket_change)(ticket, team=shipping)
        # The billing agent hears that it left their queue; the shipping agent that it arrived in theirs.
        for socket in (billing_ws, shipping_ws):
            assert await receive(socket) == ticket_event(moved)
        assert moved.team_id == shipping.pk
        assert await sales_ws.receive_nothing(timeout=QUIET)
        for socket in sockets:
            await socket.disconnect()

    run(scenario)


def test_a_subscribed_agent_gets_the_ticket_change_once_and_nothing_of_a_rolled_back_one():
    ticket = TicketFactory()
    agent = AgentFactory()
    cookie = session_cookie(agent)

    def rolled_back_change():
        with pytest.raises(Rollback), transaction.atomic():
            Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.SOLVED, version=F("version") + 1)
            ticket_changed_publish(ticket=Ticket.objects.get(pk=ticket.pk))
            raise Rollback

    async def scenario():
        socket = agent_socket(cookie=cookie)
        await connect(socket)
        await socket.send_json_to({"type": "subscribe", "ticket_id": ticket.pk})
        assert (await receive(socket))["type"] == "viewers"
        await database_sync_to_async(rolled_back_change)()
        assert await socket.receive_nothing(timeout=QUIET)
        changed = await database_sync_to_async(ticket_change)(ticket, assignee=agent)
        assert await receive(socket) == ticket_event(changed)
        assert changed.assignee_id == agent.pk
        assert await socket.receive_nothing(timeout=QUIET)  # not a second time through AGENTS
        await socket.disconnect()

    run(scenario)


def test_ticket_update_publishes_the_change():
    team = TeamFactory()
    agent = team_agent(team)
    ticket = TicketFactory(team=team)
    cookie = session_cookie(agent)

    async def scenario():
        socket = agent_socket(cookie=cookie)
        await connect(socket)
        changed = await database_sync_to_async(ticket_update)(
            ticket=ticket,
            actor=Actor.agent(agent),
            changes=TicketChanges(status=Ticket.Status.PENDING),
            expected_version=1,
        )
        event = await socket.receive_json_from(timeout=2)
        await socket.disconnect()
        assert event == ticket_event(changed)

    run(scenario)


def test_two_agents_on_one_ticket_see_each_other_and_each_others_typing():
    team = TeamFactory()
    dora = team_agent(team, profile__display_name="Dora")
    eric = team_agent(team, profile__display_name="Eric")
    ticket = TicketFactory(team=team)
    dora_cookie, eric_cookie = session_cookie(dora), session_cookie(eric)

    async def scenario():
        dora_ws, eric_ws = agent_socket(cookie=dora_cookie), agent_socket(cookie=eric_cookie)
        await connect(dora_ws)
        await connect(eric_ws)
        await dora_ws.send_json_to({"type": "subscribe", "ticket_id": ticket.pk})
        assert (await receive(dora_ws))["agents"] == [{"id": dora.pk, "name": "Dora"}]
        await eric_ws.send_json_to({"type": "subscribe", "ticket_id": ticket.pk})
        both = {
            "type": "viewers",
            "ticket_id": ticket.pk,
            "agents": [{"id": dora.pk, "name": "Dora"}, {"id": eric.pk, "name": "Eric"}],
        }
        assert await receive(dora_ws) == both
        assert await receive(eric_ws) == both

        for is_typing in (True, False):
            await eric_ws.send_json_to({"type": "typing", "ticket_id": ticket.pk, "is_typing": is_typing})
            assert await receive(dora_ws) == {
                "type": "typing",
                "ticket_id": ticket.pk,
                "who": "agent",
                "name": "Eric",
                "is_typing": is_typing,
            }
        assert await eric_ws.receive_nothing(timeout=QUIET)  # not its own

        await eric_ws.disconnect()
        assert await receive(dora_ws) == {
            "type": "viewers",
            "ticket_id": ticket.pk,
            "agents": [{"id": dora.pk, "name": "Dora"}],
        }
        await dora_ws.disconnect()

    run(scenario)


@pytest.mark.parametrize("direction", [Message.Direction.OUTBOUND, Message.Direction.INBOUND])
def test_a_message_event_names_its_author_by_id(direction):
    agent = AgentFactory(profile__display_name="Dora")
    ticket = TicketFactory()
    cookie = session_cookie(agent)

    def write():
        with transaction.atomic():
            message = MessageFactory(
                ticket=ticket,
                channel=ChannelFactory(),
                direction=direction,
                author=agent if direction == Message.Direction.OUTBOUND else None,
            )
            message_created_publish(message=message)
        return message

    async def scenario():
        socket = agent_socket(cookie=cookie)
        await connect(socket)
        message = await database_sync_to_async(write)()
        event = await receive(socket)
        assert event["message"]["id"] == message.pk
        assert event["message"]["author_id"] == (agent.pk if direction == Message.Direction.OUTBOUND else None)
        assert event["message"]["author_name"] == (
            "Dora" if direction == Message.Direction.OUTBOUND else ticket.customer.name
        )
        await socket.disconnect()

    run(scenario)
