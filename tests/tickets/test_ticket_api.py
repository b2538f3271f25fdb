"""Agents' ticket endpoints: list and read scoped to what they may see; changes with one event per field."""

import pytest

from tests.factories import AgentFactory, TeamFactory, TicketFactory
from tickets.models import Tag, Ticket
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def returns(db):
    return TeamFactory(name="Returns")


@pytest.fixture
def tickets(member, billing, returns):
    colleague = AgentFactory(username="carl")
    return {
        "billing": TicketFactory(team=billing),
        "no_team": TicketFactory(team=None),
        "no_team_other_assignee": TicketFactory(team=None, assignee=colleague),
        "returns": TicketFactory(team=returns),
        "returns_assigned_to_me": TicketFactory(team=returns, assignee=member),
        "returns_other_assignee": TicketFactory(team=returns, assignee=colleague),
    }


def listed_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [ticket["id"] for ticket in response.json()["results"]]


def patch(client, ticket, body):
    return client.patch(f"/api/v1/tickets/{ticket.pk}", body, format="json")


def events_of(ticket) -> list[tuple]:
    return list(
        TimelineEvent.objects.filter(ticket=ticket)
        .order_by("id")
        .values_list("type", "actor_kind", "actor_id", "params", "customer_id")
    )


def test_agent_lists_tickets_of_their_teams_without_team_and_assigned_to_them(member_client, tickets):
    response = member_client.get("/api/v1/tickets")

    visible = ["billing", "no_team", "no_team_other_assignee", "returns_assigned_to_me"]
    assert listed_ids(response) == sorted((tickets[name].pk for name in visible), reverse=True)


def test_admin_lists_every_ticket(admin_client, tickets):
    response = admin_client.get("/api/v1/tickets")

    assert listed_ids(response) == sorted((ticket.pk for ticket in tickets.values()), reverse=True)


def test_list_filters_by_status_within_what_the_agent_may_see(member_client, tickets, returns):
    Ticket.objects.filter(pk__in=[tickets["billing"].pk, tickets["returns"].pk]).update(status=Ticket.Status.PENDING)

    response = member_client.get("/api/v1/tickets", {"status": "pending"})

    assert listed_ids(response) == [tickets["billing"].pk]


def test_list_with_unknown_status_is_a_400(member_client, tickets):
    response = member_client.get("/api/v1/tickets", {"status": "done"})

    assert response.status_code == 400
    assert response.json()["detail"] == "status must be one of new, open, pending, on_hold, solved, closed."


@pytest.mark.parametrize("name", ["billing", "no_team", "returns_assigned_to_me"])
def test_agent_reads_a_visible_ticket(member_client, tickets, name):
    response = member_client.get(f"/api/v1/tickets/{tickets[name].pk}")

    assert response.status_code == 200
    assert response.json()["id"] == tickets[name].pk


@pytest.mark.parametrize("name", ["returns", "returns_other_assignee"])
def test_ticket_of_another_team_is_a_404_like_a_missing_one(member_client, tickets, name):
    # When an agent asks for a ticket of a team they are not in, and for one that does not exist
    hidden = member_client.get(f"/api/v1/tickets/{tickets[name].pk}")
    missing = member_client.get("/api/v1/tickets/999999")

    # Then both answers are the same 404: nothing tells that the ticket exists
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"detail": "No such ticket.", "code": "not_found"}


def test_patching_a_ticket_of_another_team_is_a_404_and_changes_nothing(member_client, tickets):
    ticket = tickets["returns"]

    response = patch(member_client, ticket, {"status": "solved", "priority": "urgent"})

    assert response.status_code == 404
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.version) == ("open", "normal", 1)
    assert events_of(ticket) == []


def test_patch_writes_one_event_per_changed_field_with_the_agent_as_actor(member_client, member, billing):
    # Given an open, unassigned ticket with no team and one tag
    ticket = TicketFactory(team=None)
    ticket.tags.set([Tag.objects.create(name="refund")])
    new_assignee = AgentFactory(username="dora")

    # When the agent changes status, priority, team, assignee and tags at once
    response = patch(
        member_client,
        ticket,
        {
            "status": "pending",
            "priority": "high",
            "team_id": billing.pk,
            "assignee_id": new_assignee.pk,
            "tags": [" VIP ", "shipping", "vip"],
            "version": 1,
        },
    )

    # Then the ticket has the new values and a new version
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["priority"], body["team_id"], body["assignee_id"]) == (
        "pending",
        "high",
        billing.pk,
        new_assignee.pk,
    )
    assert body["tags"] == ["shipping", "vip"]
    assert body["version"] == 2
    # And one timeline event per changed field, in a fixed order, by the agent, with exact parameters
    assert events_of(ticket) == [
        ("status_changed", "agent", member.pk, {"from": "open", "to": "pending"}, ticket.customer_id),
        ("priority_changed", "agent", member.pk, {"from": "normal", "to": "high"}, ticket.customer_id),
        ("team_changed", "agent", member.pk, {"from": None, "to": billing.pk}, ticket.customer_id),
        ("assigned", "agent", member.pk, {"from": None, "to": new_assignee.pk}, ticket.customer_id),
        (
            "tags_changed",
            "agent",
            member.pk,
            {"added": ["shipping", "vip"], "removed": ["refund"]},
            ticket.customer_id,
        ),
    ]


@pytest.mark.parametrize(
    ("body", "event"),
    [
        ({"status": "on_hold"}, ("status_changed", {"from": "open", "to": "on_hold"})),
        ({"priority": "low"}, ("priority_changed", {"from": "normal", "to": "low"})),
        ({"subject": "Refund for A-1"}, ("subject_changed", {"from": "Question", "to": "Refund for A-1"})),
        ({"tags": ["Refund"]}, ("tags_changed", {"added": ["refund"], "removed": []})),
    ],
)
def test_patch_of_one_field_writes_exactly_one_event(member_client, member, body, event):
    ticket = TicketFactory(team=None, subject="Question")

    response = patch(member_client, ticket, body)

    assert response.status_code == 200
    assert [(t, p) for t, _, _, p, _ in events_of(ticket)] == [event]
    ticket.refresh_from_db()
    assert ticket.version == 2


def test_patch_with_unchanged_values_writes_no_event_and_keeps_the_version(member_client):
    ticket = TicketFactory(team=None, status=Ticket.Status.OPEN, priority=Ticket.Priority.NORMAL)

    response = patch(member_client, ticket, {"status": "open", "priority": "normal", "tags": []})

    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert events_of(ticket) == []


def test_patch_with_a_stale_version_is_a_409_and_changes_nothing(member_client):
    # Given a ticket someone else changed since the agent loaded it (version 1 -> 2)
    ticket = TicketFactory(team=None)
    Ticket.objects.filter(pk=ticket.pk).update(version=2)

    # When the agent saves with the version they loaded
    response = patch(member_client, ticket, {"status": "solved", "priority": "urgent", "tags": ["x"], "version": 1})

    # Then it is refused and nothing changed
    assert response.status_code == 409
    assert response.json() == {
        "detail": "The ticket changed since you loaded it (version 1, now 2); reload it.",
        "code": "stale",
    }
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.version, ticket.solved_at) == ("open", "normal", 2, None)
    assert list(ticket.tags.all()) == []
    assert events_of(ticket) == []


def test_patch_with_the_current_version_is_applied(member_client):
    ticket = TicketFactory(team=None)
    Ticket.objects.filter(pk=ticket.pk).update(version=4)

    response = patch(member_client, ticket, {"priority": "urgent", "version": 4})

    assert response.status_code == 200
    assert (response.json()["priority"], response.json()["version"]) == ("urgent", 5)


@pytest.mark.parametrize("status", ["open", "solved", "new"])
def test_closed_ticket_cannot_change_status_and_nothing_else_is_applied(member_client, status):
    ticket = TicketFactory(team=None, status=Ticket.Status.CLOSED)

    response = patch(member_client, ticket, {"status": status, "priority": "urgent"})

    assert response.status_code == 409
    assert response.json() == {"detail": "A closed ticket cannot change status.", "code": "ticket_closed"}
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.version) == ("closed", "normal", 1)
    assert events_of(ticket) == []


def test_solving_sets_solved_at_and_reopening_clears_it(member_client):
    ticket = TicketFactory(team=None)

    solved = patch(member_client, ticket, {"status": "solved"})
    ticket.refresh_from_db()
    solved_at = ticket.solved_at
    reopened = patch(member_client, ticket, {"status": "open"})

    assert solved.status_code == reopened.status_code == 200
    assert solved_at is not None
    assert solved.json()["solved_at"] is not None
    assert reopened.json()["solved_at"] is None
    ticket.refresh_from_db()
    assert (ticket.status, ticket.solved_at) == ("open", None)


def test_closing_a_solved_ticket_keeps_solved_at(member_client):
    ticket = TicketFactory(team=None)
    patch(member_client, ticket, {"status": "solved"})
    ticket.refresh_from_db()
    solved_at = ticket.solved_at

    response = patch(member_client, ticket, {"status": "closed"})

    assert response.status_code == 200
    ticket.refresh_from_db()
    assert (ticket.status, ticket.solved_at) == ("closed", solved_at)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "done"}, "status"),
        ({"priority": "critical"}, "priority"),
        ({"tags": "vip"}, "tags"),
        ({"version": "one"}, "version"),
    ],
)
def test_invalid_values_are_a_400_and_change_nothing(member_client, body, field):
    ticket = TicketFactory(team=None)

    response = patch(member_client, ticket, body)

    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid input."
    assert list(response.json()["errors"]) == [field]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.version) == ("open", "normal", 1)
    assert events_of(ticket) == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"team_id": 999999}, "No such team."),
        ({"assignee_id": 999999}, "The assignee must be an active agent."),
    ],
)
def test_unknown_team_or_assignee_is_a_400_and_changes_nothing(member_client, body, detail):
    ticket = TicketFactory(team=None)

    response = patch(member_client, ticket, {"priority": "high", **body})

    assert response.status_code == 400
    assert response.json()["detail"] == detail
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.team_id, ticket.assignee_id, ticket.version) == ("normal", None, None, 1)
    assert events_of(ticket) == []


def test_assigning_to_a_user_who_is_not_an_agent_is_refused(member_client, django_user_model):
    ticket = TicketFactory(team=None)
    outsider = django_user_model.objects.create_user(username="outsider", password="x" * 12)

    response = patch(member_client, ticket, {"assignee_id": outsider.pk})

    assert response.status_code == 400
    ticket.refresh_from_db()
    assert ticket.assignee_id is None


def test_agent_moving_a_ticket_to_another_team_gets_the_changed_ticket(member_client, member, billing, returns):
    # Given a Billing ticket the agent may see
    ticket = TicketFactory(team=billing)

    # When the agent hands it over to Returns (a team they are not in)
    response = patch(member_client, ticket, {"team_id": returns.pk})

    # Then the change is answered as done, with the ticket as it now is
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["team_id"]) == (ticket.pk, returns.pk)
    assert events_of(ticket) == [
        ("team_changed", "agent", member.pk, {"from": billing.pk, "to": returns.pk}, ticket.customer_id)
    ]
    # And from now on the ticket is out of the agent's sight
    assert member_client.get(f"/api/v1/tickets/{ticket.pk}").status_code == 404
