"""Routing new tickets to their channel's default team: one at a time (``ticket_route``) and a batch import's
together (``tickets_route``), with the same result."""

import pytest

from channels_app.models import Channel
from tests.factories import ChannelFactory, TeamFactory, TicketFactory
from tickets.models import Ticket
from tickets.services.routing import ticket_route, tickets_route
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db


def team_events(ticket: Ticket) -> list[tuple]:
    return list(
        TimelineEvent.objects.filter(ticket=ticket, type=TimelineEvent.Type.TEAM_CHANGED).values_list(
            "customer_id", "actor_kind", "params"
        )
    )


def test_many_tickets_are_routed_as_one_at_a_time_routes_each():
    billing, sales = TeamFactory(name="Billing"), TeamFactory(name="Sales")
    to_billing = ChannelFactory(kind=Channel.Kind.EMAIL, default_team=billing)
    to_sales = ChannelFactory(kind=Channel.Kind.SMS, default_team=sales)
    nowhere = ChannelFactory(kind=Channel.Kind.EMAIL, default_team=None)
    one_by_one = [TicketFactory(channel=channel) for channel in (to_billing, to_sales, nowhere)]
    together = [TicketFactory(channel=channel) for channel in (to_billing, to_sales, nowhere)]
    already = TicketFactory(channel=to_billing, team=sales)

    for ticket in one_by_one:
        ticket_route(ticket_id=ticket.pk)
    routed = tickets_route(ticket_ids=[ticket.pk for ticket in together] + [already.pk, 987654321])

    assert routed == [together[0].pk, together[1].pk]
    for single, batched in zip(one_by_one, together, strict=True):
        single.refresh_from_db()
        batched.refresh_from_db()
        assert (batched.team_id, batched.version) == (single.team_id, single.version)
        assert [params for _, _, params in team_events(batched)] == [params for _, _, params in team_events(single)]
    assert team_events(together[0]) == [
        (
            together[0].customer_id,
            "system",
            {"from": None, "to": billing.pk, "rule": "channel_default_team", "actor_label": "routing"},
        )
    ]
    already.refresh_from_db()
    assert already.team_id == sales.pk  # a routed ticket is left as it is
    assert team_events(already) == []


def test_a_ticket_the_task_routes_is_pushed_to_the_agents_who_saw_it_unrouted_and_its_team(
    django_capture_on_commit_callbacks,
):
    # A ticket opened unrouted (its channel had no team then) is routed by the task once the channel has one
    channel = ChannelFactory(kind=Channel.Kind.EMAIL)
    ticket = TicketFactory(channel=channel)
    team = TeamFactory(name="Billing")
    Channel.objects.filter(pk=channel.pk).update(default_team=team)

    with django_capture_on_commit_callbacks() as callbacks:
        ticket_route(ticket_id=ticket.pk)
    with django_capture_on_commit_callbacks() as again:
        ticket_route(ticket_id=ticket.pk)

    [push] = callbacks[0].keywords["publications"]
    assert push.event["type"] == "ticket"
    assert push.event["ticket"]["team_id"] == team.pk
    assert push.audience == {
        "team_id": team.pk,
        "assignee_id": None,
        "previous": {"team_id": None, "assignee_id": None},
    }
    assert again == []  # routed already: nothing changes, nothing is pushed


def test_routing_again_changes_nothing():
    team = TeamFactory(name="Billing")
    ticket = TicketFactory(channel=ChannelFactory(kind=Channel.Kind.EMAIL, default_team=team))

    assert tickets_route(ticket_ids=[ticket.pk]) == [ticket.pk]
    assert tickets_route(ticket_ids=[ticket.pk, ticket.pk]) == []

    ticket.refresh_from_db()
    assert ticket.team_id == team.pk
    assert len(team_events(ticket)) == 1


@pytest.mark.parametrize("count", [3, 30])
def test_routing_a_batch_costs_the_same_statements_whatever_its_size(count, django_assert_num_queries):
    team = TeamFactory(name="Billing")
    routed = [TicketFactory(channel=ChannelFactory(kind=Channel.Kind.EMAIL, default_team=team)) for _ in range(count)]
    unrouted = [TicketFactory(channel=ChannelFactory(kind=Channel.Kind.EMAIL)) for _ in range(count)]

    # Then: a savepoint, the locking read, one update per team and one insert of the events
    with django_assert_num_queries(5):
        assert len(tickets_route(ticket_ids=[ticket.pk for ticket in routed + unrouted])) == count
    # And tickets with nowhere to go cost the read only
    with django_assert_num_queries(3):
        assert tickets_route(ticket_ids=[ticket.pk for ticket in unrouted]) == []
