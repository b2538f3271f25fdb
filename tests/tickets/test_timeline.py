"""The customer timeline (GET /api/v1/customers/<id>/timeline): three kinds of entries, one order, one cursor."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents.services import api_token_create
from channels_app.models import Channel, Delivery
from customers.models import ContextEvent
from tests.conftest import bearer
from tests.factories import (
    AgentFactory,
    ChannelFactory,
    ContextEventFactory,
    CustomerFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
    TimelineEventFactory,
)
from tickets.models import Message
from tickets.services.attachments import attachment_store
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def message_at(when: datetime, **fields) -> Message:
    message = MessageFactory(**fields)
    Message.objects.filter(pk=message.pk).update(created_at=when)
    return message


def event_at(when: datetime, **fields) -> TimelineEvent:
    event = TimelineEventFactory(**fields)
    TimelineEvent.objects.filter(pk=event.pk).update(created_at=when)
    return event


def context_at(when: datetime, **fields) -> ContextEvent:
    return ContextEventFactory(occurred_at=when, **fields)


def timeline(client: APIClient, customer, **params):
    return client.get(f"/api/v1/customers/{customer.pk}/timeline", params)


def keys(response) -> list[tuple[str, int]]:
    return [(entry["kind"], entry[entry["kind"]]["id"]) for entry in response.json()["results"]]


def walk(client: APIClient, customer, *, limit: int) -> tuple[list[tuple[str, int]], int]:
    """Every entry of every page, following next_cursor; and how many pages it took."""
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = timeline(client, customer, **params)
        assert response.status_code == 200, response.content
        pages += 1
        seen += keys(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < 500, "the cursor does not advance"


@pytest.fixture
def customer(db):
    return CustomerFactory(name="Ann Lee")


@pytest.fixture
def mixed_history(customer):
    """Two tickets on two channels, an internal note, events with and without a ticket and context events, with
    timestamp ties across the three kinds and within one kind; and another customer's entries interleaved."""
    email, api = ChannelFactory(kind=Channel.Kind.EMAIL), ChannelFactory(kind=Channel.Kind.API)
    first = TicketFactory(customer=customer, channel=email)
    second = TicketFactory(customer=customer, channel=api)
    entries = {
        "m1": message_at(at(1), ticket=first, channel=email),
        "m2": message_at(at(3), ticket=second, channel=api),
        "note": message_at(at(5), ticket=first, channel=None, direction=Message.Direction.NOTE),
        "m4": message_at(at(2), ticket=second, channel=api, direction=Message.Direction.OUTBOUND),
        "m5": message_at(at(2), ticket=first, channel=email),
        "e1": event_at(at(3), ticket=second),
        "e2": event_at(at(2), ticket=None, customer=customer, type=TimelineEvent.Type.IDENTITY_ADDED),
        "c1": context_at(at(3), customer=customer),
        "c2": context_at(at(4), customer=customer, type="cart.updated"),
    }
    other = CustomerFactory()
    other_ticket = TicketFactory(customer=other)
    message_at(at(3), ticket=other_ticket, channel=api)
    message_at(at(6), ticket=other_ticket, channel=email)
    event_at(at(3), ticket=other_ticket)
    context_at(at(3), customer=other)
    return entries


def test_timeline_merges_messages_events_and_context_newest_first_with_ties_broken_by_kind_then_id(
    agent_client, customer, mixed_history
):
    # Given the mixed history, where m2, e1 and c1 share a timestamp, and m4, m5 and e2 share another
    history = mixed_history

    # When an agent reads the timeline
    response = timeline(agent_client, customer)

    # Then every entry of this customer comes once, newest first; on a tie messages come before events before
    # context events, and within a kind the later id first
    assert response.status_code == 200
    assert keys(response) == [
        ("message", history["note"].pk),
        ("context", history["c2"].pk),
        ("message", history["m2"].pk),
        ("event", history["e1"].pk),
        ("context", history["c1"].pk),
        ("message", history["m5"].pk),
        ("message", history["m4"].pk),
        ("event", history["e2"].pk),
        ("message", history["m1"].pk),
    ]
    assert [entry["at"] for entry in response.json()["results"]] == [
        "2024-05-01T12:05:00Z",
        "2024-05-01T12:04:00Z",
        "2024-05-01T12:03:00Z",
        "2024-05-01T12:03:00Z",
        "2024-05-01T12:03:00Z",
        "2024-05-01T12:02:00Z",
        "2024-05-01T12:02:00Z",
        "2024-05-01T12:02:00Z",
        "2024-05-01T12:01:00Z",
    ]
    assert response.json()["next_cursor"] is None


def test_timeline_entries_carry_their_full_payload(agent_client, agent, customer):
    # Given an outbound reply with an attachment and a delivery, an event by an agent and a context event
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, name="Support mailbox")
    ticket = TicketFactory(customer=customer, channel=channel)
    reply = message_at(
        at(3),
        ticket=ticket,
        channel=channel,
        direction=Message.Direction.OUTBOUND,
        author=agent,
        text="Your parcel left today.",
        provider_id="",
    )
    attachment = attachment_store(message=reply, filename="label.pdf", content_type="application/pdf", content=b"%PDF")
    delivery = Delivery.objects.create(message=reply, channel=channel, recipient="ann@example.com")
    event = event_at(
        at(2),
        ticket=ticket,
        type=TimelineEvent.Type.PRIORITY_CHANGED,
        actor_kind=TimelineEvent.ActorKind.AGENT,
        actor=agent,
        params={"from": "normal", "to": "high"},
    )
    context = ContextEventFactory(
        customer=customer, occurred_at=at(1), type="order.placed", payload={"order_id": "A-1"}, source="shop"
    )

    # When an agent reads the timeline
    response = timeline(agent_client, customer)

    # Then each entry is serialised in full
    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "kind": "message",
            "at": "2024-05-01T12:03:00Z",
            "message": {
                "id": reply.pk,
                "ticket_id": ticket.pk,
                "customer_id": customer.pk,
                "direction": "outbound",
                "channel": {"id": channel.pk, "kind": "email", "name": "Support mailbox"},
                "author": {"id": agent.pk, "username": agent.username},
                "subject": "",
                "text": "Your parcel left today.",
                "html": "",
                "provider_id": "",
                "attachments": [
                    {
                        "id": attachment.pk,
                        "filename": "label.pdf",
                        "content_type": "application/pdf",
                        "size": 4,
                        "sha256": hashlib.sha256(b"%PDF").hexdigest(),
                        "content_id": "",
                    }
                ],
                "media": [],
                "delivery": {
                    "id": delivery.pk,
                    "status": "queued",
                    "attempts": 0,
                    "recipient": "ann@example.com",
                    "error_code": "",
                    "error": "",
                    "sent_at": None,
                },
                "sent_at": None,
                "created_at": "2024-05-01T12:03:00Z",
            },
        },
        {
            "kind": "event",
            "at": "2024-05-01T12:02:00Z",
            "event": {
                "id": event.pk,
                "ticket_id": ticket.pk,
                "type": "priority_changed",
                "actor_kind": "agent",
                "actor": {"id": agent.pk, "username": agent.username},
                "params": {"from": "normal", "to": "high"},
                "created_at": "2024-05-01T12:02:00Z",
            },
        },
        {
            "kind": "context",
            "at": "2024-05-01T12:01:00Z",
            "context": {
                "id": context.pk,
                "type": "order.placed",
                "payload": {"order_id": "A-1"},
                "occurred_at": "2024-05-01T12:01:00Z",
                "source": "shop",
            },
        },
    ]


@pytest.fixture
def tied_history(customer):
    """30 entries on four timestamps only, so page boundaries fall inside runs of ties of every kind."""
    channel = ChannelFactory()
    ticket = TicketFactory(customer=customer, channel=channel)
    expected = []
    for index in range(12):
        expected.append(("message", message_at(at(index % 4), ticket=ticket, channel=channel).pk))
    for index in range(10):
        expected.append(("event", event_at(at(index % 4), ticket=ticket).pk))
    for index in range(8):
        expected.append(("context", context_at(at(index % 4), customer=customer).pk))
    return expected


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 29, 30, 31])
def test_walking_every_page_yields_each_entry_once_in_order(agent_client, customer, tied_history, limit):
    # Given 30 entries with many ties, and the order as one page gives it
    one_page = keys(timeline(agent_client, customer, limit=200))
    assert sorted(one_page) == sorted(tied_history)

    # When a client walks the timeline page by page
    walked, pages = walk(agent_client, customer, limit=limit)

    # Then it sees every entry exactly once, in the same order, in as many pages as needed
    assert walked == one_page
    assert pages == max(1, -(-30 // limit))


def test_other_customers_entries_never_appear_on_any_page(agent_client, customer, mixed_history):
    # Given the mixed history interleaved with another customer's entries
    own = {("message", m.pk) for m in Message.objects.filter(customer=customer)}
    own |= {("event", e.pk) for e in TimelineEvent.objects.filter(customer=customer)}
    own |= {("context", c.pk) for c in ContextEvent.objects.filter(customer=customer)}

    # When an agent walks all pages
    walked, _ = walk(agent_client, customer, limit=2)

    # Then only this customer's entries are there
    assert set(walked) == own
    assert len(walked) == len(own) == 9


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        # base64 of "2024-05-01T12:00:00|3|1": a naive time
        "MjAyNC0wNS0wMVQxMjowMDowMHwzfDE",
        # base64 of "2024-05-01T12:00:00+00:00|9|1": an unknown kind rank
        "MjAyNC0wNS0wMVQxMjowMDowMCswMDowMHw5fDE",
        # base64 of "yesterday|3|1"
        "eWVzdGVyZGF5fDN8MQ",
        # base64 of "2024-05-01T12:00:00+00:00|3|x"
        "MjAyNC0wNS0wMVQxMjowMDowMCswMDowMHwzfHg",
    ],
)
def test_invalid_cursor_is_a_400_with_detail(agent_client, customer, mixed_history, cursor):
    response = timeline(agent_client, customer, cursor=cursor)

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid cursor.", "code": "invalid_cursor"}


@pytest.mark.parametrize(
    ("limit", "detail"),
    [
        ("0", "limit must be between 1 and 200."),
        ("201", "limit must be between 1 and 200."),
        ("500", "limit must be between 1 and 200."),
        ("-3", "limit must be between 1 and 200."),
        ("abc", "limit must be a number."),
        ("2.5", "limit must be a number."),
    ],
)
def test_invalid_limit_is_a_400_with_detail(agent_client, customer, limit, detail):
    response = timeline(agent_client, customer, limit=limit)

    assert response.status_code == 400
    assert response.json()["detail"] == detail


@pytest.mark.parametrize("limit", ["1", "200"])
def test_limits_at_the_bounds_are_accepted(agent_client, customer, mixed_history, limit):
    response = timeline(agent_client, customer, limit=limit)

    assert response.status_code == 200
    assert len(response.json()["results"]) == min(int(limit), 9)


def test_unknown_customer_is_a_404(agent_client, customer):
    response = agent_client.get(f"/api/v1/customers/{customer.pk + 1000}/timeline")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such customer.", "code": "not_found"}


def test_agents_see_internal_notes_but_integrations_do_not(agent_client, api_client, customers_token, customer):
    # Given an inbound message, an outbound reply and an internal note
    channel = ChannelFactory()
    ticket = TicketFactory(customer=customer, channel=channel)
    inbound = message_at(at(1), ticket=ticket, channel=channel)
    outbound = message_at(at(2), ticket=ticket, channel=channel, direction=Message.Direction.OUTBOUND)
    note = message_at(at(3), ticket=ticket, channel=None, direction=Message.Direction.NOTE, text="VIP, be kind")

    # When an agent and an integration token with customers:read read the timeline
    as_agent = timeline(agent_client, customer)
    as_integration = timeline(bearer(api_client, customers_token), customer)

    # Then the agent sees the note and the integration does not
    assert as_agent.status_code == as_integration.status_code == 200
    assert keys(as_agent) == [("message", note.pk), ("message", outbound.pk), ("message", inbound.pk)]
    assert keys(as_integration) == [("message", outbound.pk), ("message", inbound.pk)]
    assert b"VIP, be kind" not in as_integration.content


def test_integrations_do_not_see_note_added_events_either(agent, agent_client, api_client, customers_token, customer):
    # Given a note written through the API, which records a note_added event naming whom it mentions
    ticket = TicketFactory(customer=customer)
    response = agent_client.post(f"/api/v1/tickets/{ticket.pk}/notes", {"text": "Ask @x about it"}, format="json")
    assert response.status_code == 201
    event = TimelineEvent.objects.get(type="note_added")

    # When an agent and an integration read the timeline
    as_agent = timeline(agent_client, customer)
    as_integration = timeline(bearer(api_client, customers_token), customer)

    # Then only the agent sees the event
    assert ("event", event.pk) in keys(as_agent)
    assert [key for key in keys(as_integration) if key[0] == "event"] == []


def test_integration_token_without_customers_read_is_refused(api_client, customer):
    # Given an integration token that may only write customers
    secret = api_token_create(name="shop", scopes=["customers:write"]).secret

    response = timeline(bearer(api_client, secret), customer)

    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to perform this action."}


@pytest.fixture
def team_history(customer):
    """Tickets of the agent's team, of no team, of another team, and of another team but assigned to the agent."""
    mine, theirs = TeamFactory(name="Billing"), TeamFactory(name="Returns")
    agent = AgentFactory(username="bea")
    agent.agent_profile.teams.set([mine])
    channel = ChannelFactory()
    tickets = {
        "team": TicketFactory(customer=customer, channel=channel, team=mine),
        "no_team": TicketFactory(customer=customer, channel=channel, team=None),
        "other_team": TicketFactory(customer=customer, channel=channel, team=theirs),
        "assigned": TicketFactory(customer=customer, channel=channel, team=theirs, assignee=agent),
    }
    entries = {}
    for minute, (name, ticket) in enumerate(tickets.items()):
        entries[f"{name}_message"] = message_at(at(minute * 2 + 1), ticket=ticket, channel=channel)
        entries[f"{name}_event"] = event_at(at(minute * 2 + 2), ticket=ticket)
    entries["customer_event"] = event_at(at(20), ticket=None, customer=customer)
    entries["context"] = context_at(at(21), customer=customer)
    return agent, entries


def test_agent_does_not_see_messages_or_events_of_another_teams_ticket(customer, team_history):
    agent, entries = team_history
    client = APIClient()
    client.force_authenticate(agent)

    response = timeline(client, customer)

    assert response.status_code == 200
    assert keys(response) == [
        ("context", entries["context"].pk),
        ("event", entries["customer_event"].pk),
        ("event", entries["assigned_event"].pk),
        ("message", entries["assigned_message"].pk),
        ("event", entries["no_team_event"].pk),
        ("message", entries["no_team_message"].pk),
        ("event", entries["team_event"].pk),
        ("message", entries["team_message"].pk),
    ]


def test_admin_sees_every_ticket_on_the_timeline(admin_client, customer, team_history):
    _, entries = team_history

    response = timeline(admin_client, customer)

    assert response.status_code == 200
    assert keys(response) == [
        ("context", entries["context"].pk),
        ("event", entries["customer_event"].pk),
        ("event", entries["assigned_event"].pk),
        ("message", entries["assigned_message"].pk),
        ("event", entries["other_team_event"].pk),
        ("message", entries["other_team_message"].pk),
        ("event", entries["no_team_event"].pk),
        ("message", entries["no_team_message"].pk),
        ("event", entries["team_event"].pk),
        ("message", entries["team_message"].pk),
    ]


def _rich_history(customer, *, messages: int) -> None:
    """``messages`` messages over several tickets and channels (every fifth an outbound reply by an agent with a
    delivery, every seventh with an attachment, some notes), plus events by agents and context events."""
    author = AgentFactory()
    team = TeamFactory()
    channels = [ChannelFactory(kind=kind) for kind in (Channel.Kind.EMAIL, Channel.Kind.API, Channel.Kind.CHAT)]
    tickets = [
        TicketFactory(customer=customer, channel=channels[index % 3], team=team if index % 2 else None)
        for index in range(max(1, min(messages, 5)))
    ]
    for index in range(messages):
        ticket, channel = tickets[index % len(tickets)], channels[index % 3]
        if index % 5 == 4:
            message = message_at(
                at(index), ticket=ticket, channel=channel, direction=Message.Direction.OUTBOUND, author=author
            )
            Delivery.objects.create(message=message, channel=channel, recipient="ann@example.com")
        elif index % 11 == 10:
            message = message_at(
                at(index), ticket=ticket, channel=None, direction=Message.Direction.NOTE, author=author
            )
        else:
            message = message_at(at(index), ticket=ticket, channel=channel)
        if index % 7 == 0:
            attachment_store(message=message, filename=f"photo{index}.jpg", content_type="image/jpeg", content=b"jpg")
        if index % 3 == 0:
            event_at(
                at(index),
                ticket=ticket,
                actor_kind=TimelineEvent.ActorKind.AGENT,
                actor=author,
                type=TimelineEvent.Type.TAGS_CHANGED,
            )
        if index % 4 == 0:
            context_at(at(index), customer=customer)


def _count_queries(customer, viewer, **params) -> tuple[int, list[str]]:
    client = APIClient()
    client.force_authenticate(type(viewer).objects.get(pk=viewer.pk))  # a fresh user: no cached profile
    with CaptureQueriesContext(connection) as queries:
        response = timeline(client, customer, **params)
    assert response.status_code == 200
    return len(queries), [query["sql"] for query in queries.captured_queries]


# The agent's profile, the customer, the agent's team ids, messages (with channel, author, delivery and ticket
# joined), their attachments, their media, events (with actor and ticket), context events.
TIMELINE_QUERIES = 8


@pytest.mark.parametrize("viewer_kind", ["agent", "admin"])
def test_timeline_query_count_is_fixed_whatever_the_history(viewer_kind, agent, admin_user):
    # Given a customer with one message and a customer with 200 messages and their events and context events
    viewer = agent if viewer_kind == "agent" else admin_user
    small, large = CustomerFactory(), CustomerFactory()
    _rich_history(small, messages=1)
    _rich_history(large, messages=200)
    assert Message.objects.filter(customer=large).count() == 200

    # When the first page of each, and a deep page of the large one, are read
    small_count, _ = _count_queries(small, viewer)
    large_count, large_sql = _count_queries(large, viewer)
    client = APIClient()
    client.force_authenticate(viewer)
    cursor = timeline(client, large, limit=50).json()["next_cursor"]
    cursor = timeline(client, large, limit=50, cursor=cursor).json()["next_cursor"]
    deep_count, _ = _count_queries(large, viewer, limit=50, cursor=cursor)

    # Then the number of queries is the same (an admin needs no team lookup)
    expected = TIMELINE_QUERIES if viewer_kind == "agent" else TIMELINE_QUERIES - 1
    assert small_count == large_count == deep_count == expected, large_sql


def test_integration_token_sees_every_ticket_of_the_customer(api_client, customers_token, customer, team_history):
    # Given the company's systems read with customers:read: they are no agent and no team applies
    _, entries = team_history

    response = timeline(bearer(api_client, customers_token), customer)

    assert response.status_code == 200
    assert len(keys(response)) == len(entries) == 10
    assert set(keys(response)) == {
        ("message" if name.endswith("message") else "context" if name == "context" else "event", entry.pk)
        for name, entry in entries.items()
    }
