"""Team isolation on real websockets (uvicorn, the Redis channel layer): two teams, an admin; an agent sees, live,
only what they may see at that moment: a new ticket's first message, a deactivation, a ticket that changes team,
an agent who leaves a team or stops being an admin."""

import pytest

from agents.models import AgentProfile
from agents.services import agent_deactivate, agent_update, team_update
from channels_app.models import Channel
from channels_app.services.channels import channel_create
from realtime.presence import agent_ids_online, ticket_viewers
from tests.factories import AdminFactory, AgentFactory, TeamFactory, TicketFactory
from tests.realtime.fixtures import SHOP_ORIGIN
from tests.realtime.live import agent_connect, visitor_connect, visitor_say, visitor_start
from tickets.models import Ticket
from tickets.services.replies import note_create
from tickets.services.updates import TicketChanges, ticket_update
from timeline.models import TimelineEvent
from timeline.types import Actor

pytestmark = [pytest.mark.django_db(transaction=True)]


def team_agent(team, name: str):
    agent = AgentFactory(username=name.lower(), profile__display_name=name)
    agent.agent_profile.teams.add(team)
    return agent


@pytest.fixture
def teams(db):
    billing, shipping = TeamFactory(name="Billing"), TeamFactory(name="Shipping")
    return {
        "billing": billing,
        "shipping": shipping,
        "alice": team_agent(billing, "Alice"),
        "bob": team_agent(shipping, "Bob"),
        "ada": AdminFactory(username="ada", profile__display_name="Ada"),
    }


def chat_channel(*, default_team=None) -> Channel:
    return channel_create(
        kind=Channel.Kind.CHAT,
        name="Shop chat",
        default_team=default_team,
        settings={"allowed_origins": [SHOP_ORIGIN]},
    )


def viewer(user) -> dict:
    return {"id": user.pk, "name": user.agent_profile.display_name}


def is_message(text: str):
    return lambda event: event["type"] == "message" and event["message"]["text"] == text


def test_the_first_message_of_a_new_ticket_reaches_its_teams_agents_only(desk, teams):
    # Given a chat channel routed to Billing, and Alice (Billing), Bob (Shipping) and Ada (admin) connected
    channel = chat_channel(default_team=teams["billing"])
    sockets = {name: agent_connect(desk, teams[name]) for name in ("alice", "bob", "ada")}
    token = visitor_start(desk, channel)

    # When a visitor's first message opens a ticket
    visitor_say(desk, channel, token, "my parcel is lost", client_id="first")

    # Then it reaches Billing and the admin, with the ticket routed already; Shipping hears nothing of it
    ticket = Ticket.objects.get()
    assert ticket.team_id == teams["billing"].pk
    for name in ("alice", "ada"):
        event = sockets[name].receive_until(is_message("my parcel is lost"))
        assert event["message"]["ticket_id"] == ticket.pk
    sockets["bob"].assert_nothing()
    # routed once, at creation, in the ticket's timeline as routing records it
    assert list(TimelineEvent.objects.filter(ticket=ticket).order_by("pk").values_list("type", "params")) == [
        (TimelineEvent.Type.TICKET_CREATED, {"channel_id": channel.pk, "channel_kind": "chat"}),
        (
            TimelineEvent.Type.TEAM_CHANGED,
            {"from": None, "to": teams["billing"].pk, "rule": "channel_default_team", "actor_label": "routing"},
        ),
    ]

    # And the visitor's next message goes the same way
    visitor_say(desk, channel, token, "order A-7", client_id="second")
    sockets["alice"].receive_until(is_message("order A-7"))
    sockets["bob"].assert_nothing()
    for socket in sockets.values():
        socket.close()


def test_an_unrouted_tickets_first_message_reaches_everyone_who_may_see_unrouted_tickets(desk, teams):
    channel = chat_channel(default_team=None)
    sockets = {name: agent_connect(desk, teams[name]) for name in ("alice", "bob", "ada")}
    token = visitor_start(desk, channel)

    visitor_say(desk, channel, token, "anyone there?", client_id="first")

    assert Ticket.objects.get().team_id is None
    for socket in sockets.values():
        socket.receive_until(is_message("anyone there?"))
        socket.close()


def test_a_deactivated_agents_socket_is_closed_at_once_and_their_presence_goes(desk, teams):
    # Given Alice and her colleague Carl (both Billing) viewing a Billing ticket
    carl = team_agent(teams["billing"], "Carl")
    ticket = TicketFactory(team=teams["billing"])
    alice, colleague = agent_connect(desk, teams["alice"]), agent_connect(desk, carl)
    alice.send({"type": "subscribe", "ticket_id": ticket.pk})
    alice.receive_until(lambda event: event["type"] == "viewers")
    colleague.send({"type": "subscribe", "ticket_id": ticket.pk})
    colleague.receive_until(lambda event: event["type"] == "viewers" and len(event["agents"]) == 2)

    # When an admin deactivates Alice
    agent_deactivate(actor=teams["ada"], user=teams["alice"])

    # Then her socket is closed as refused (her console stops reconnecting) and she is no longer a viewer
    assert alice.closed_code() == 4403
    colleague.receive_until(lambda event: event["type"] == "viewers" and event["agents"] == [viewer(carl)])
    assert ticket_viewers(ticket_id=ticket.pk) == [viewer(carl)]
    assert agent_ids_online() == {carl.pk}
    # and the ticket's next note reaches Carl only
    note_create(ticket=ticket, author=carl, text="after Alice left")
    colleague.receive_until(is_message("after Alice left"))
    # and a reconnect is refused
    assert agent_connect(desk, teams["alice"]).closed_code() == 4403
    colleague.close()


def test_a_ticket_moved_to_another_team_leaves_the_sockets_that_may_no_longer_see_it(desk, teams):
    # Given a Billing ticket with a chat visitor, followed by Alice (Billing) and Ada (admin)
    channel = chat_channel(default_team=teams["billing"])
    token = visitor_start(desk, channel)
    visitor_say(desk, channel, token, "hello", client_id="first")
    ticket = Ticket.objects.get()
    visitor = visitor_connect(desk, channel, token)
    assert visitor.receive()["type"] == "presence"
    alice, bob, ada = (agent_connect(desk, teams[name]) for name in ("alice", "bob", "ada"))
    for socket in (alice, ada):
        socket.send({"type": "subscribe", "ticket_id": ticket.pk})
    alice.receive_until(lambda event: event["type"] == "viewers" and len(event["agents"]) == 2)
    ada.receive_until(lambda event: event["type"] == "viewers" and len(event["agents"]) == 2)

    # When Ada moves it to Shipping
    ticket_update(ticket=ticket, actor=Actor.agent(teams["ada"]), changes=TicketChanges(team_id=teams["shipping"].pk))

    # Then Alice learns it moved (it leaves her queue) and that she follows it no longer; Ada sees her go
    moved = alice.receive_until(lambda event: event["type"] == "ticket")
    assert moved["ticket"]["team_id"] == teams["shipping"].pk
    assert alice.receive() == {"type": "unsubscribed", "ticket_id": ticket.pk}
    ada.receive_until(lambda event: event["type"] == "viewers" and event["agents"] == [viewer(teams["ada"])])
    assert ticket_viewers(ticket_id=ticket.pk) == [viewer(teams["ada"])]
    # And Bob (Shipping) may follow it now; his and the visitor's typing, the messages and the viewers reach Ada
    # and Bob, never Alice
    bob.send({"type": "subscribe", "ticket_id": ticket.pk})
    both = [viewer(teams["bob"]), viewer(teams["ada"])]
    both.sort(key=lambda entry: entry["id"])
    assert bob.receive_until(lambda event: event["type"] == "viewers")["agents"] == both
    bob.send({"type": "typing", "ticket_id": ticket.pk, "is_typing": True})
    assert ada.receive_until(lambda event: event["type"] == "typing")["name"] == "Bob"
    visitor.send({"type": "typing", "is_typing": True})
    assert bob.receive_until(lambda event: event["type"] == "typing")["who"] == "visitor"
    visitor_say(desk, channel, token, "still waiting", client_id="second")
    for socket in (ada, bob):
        socket.receive_until(is_message("still waiting"))
    alice.assert_nothing()
    # and what Alice asks for is refused as for any ticket she may not see
    alice.send({"type": "typing", "ticket_id": ticket.pk, "is_typing": True})
    assert alice.receive()["code"] == "not_subscribed"
    alice.send({"type": "subscribe", "ticket_id": ticket.pk})
    assert alice.receive()["code"] == "not_found"
    assert ticket_viewers(ticket_id=ticket.pk) == both
    for socket in (alice, bob, ada, visitor):
        socket.close()


@pytest.mark.parametrize("change", ["removed from the team", "demoted from admin"])
def test_an_agent_who_loses_access_leaves_the_tickets_and_queue_events_at_once(desk, teams, change):
    billing = teams["billing"]
    ticket, other = TicketFactory(team=billing), TicketFactory(team=billing)
    user = teams["alice"] if change == "removed from the team" else teams["ada"]
    socket = agent_connect(desk, user)
    socket.send({"type": "subscribe", "ticket_id": ticket.pk})
    socket.receive_until(lambda event: event["type"] == "viewers")

    if change == "removed from the team":
        team_update(actor=teams["ada"], team=billing, name=billing.name, description="", members=[])
    else:
        AdminFactory()  # someone else stays admin
        agent_update(
            actor=teams["ada"],
            user=user,
            email=user.email,
            display_name="Ada",
            role=AgentProfile.Role.AGENT,
            teams=[teams["shipping"]],
        )

    # The socket stays open (still an agent) but follows the ticket no longer, nor hears of Billing's tickets
    assert socket.receive() == {"type": "unsubscribed", "ticket_id": ticket.pk}
    assert ticket_viewers(ticket_id=ticket.pk) == []
    note_create(ticket=other, author=teams["ada"], text="billing only")
    note_create(ticket=TicketFactory(team=None), author=teams["ada"], text="for everyone")
    assert socket.receive_until(lambda event: event["type"] == "message")["message"]["text"] == "for everyone"
    socket.assert_nothing()
    socket.close()
