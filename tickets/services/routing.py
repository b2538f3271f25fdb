"""Routing a new ticket. For now: to its channel's default team. Rules, skills and load-based assignment build
on this entry point in the routing issue.

Two steps. ``ticket_initial_routing`` decides, with no query, while ``message_ingest`` opens the ticket: the ticket
is created with its team, so the push of its first message goes only to that team's agents (and those who may see
every ticket). A ticket created with no team and routed a moment later was pushed to every agent first. Rules that
need queries (load, skills) belong to ``ticket_route``, the task's step after commit, which tells the agents of the
change like any other team change; a rule that must decide before the first push belongs to the first step.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from channels_app.models import Channel
from realtime.publish import ticket_changed_publish
from tickets.models import Ticket
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

logger = logging.getLogger(__name__)

_ROUTING = Actor.system("routing")
_RULE = "channel_default_team"


@dataclass(frozen=True)
class InitialRouting:
    """Where a new ticket starts: its team (None: unrouted) and the rule that chose it."""

    team_id: int | None
    rule: str


def ticket_initial_routing(*, channel: Channel) -> InitialRouting:
    """The team a new ticket of ``channel`` is created with. No query: the channel row holds it."""
    return InitialRouting(team_id=channel.default_team_id, rule=_RULE)


def ticket_initial_routing_event(*, ticket: Ticket, routing: InitialRouting) -> TimelineEvent | None:
    """The timeline row for a ticket opened with ``routing``'s team (unsaved: the caller inserts it with the
    ticket's other first events), the row ``ticket_route`` writes for a ticket it routes. None when unrouted."""
    if routing.team_id is None:
        return None
    return TimelineEvent(
        customer_id=ticket.customer_id,
        ticket_id=ticket.pk,
        type=TimelineEvent.Type.TEAM_CHANGED,
        actor_kind=_ROUTING.kind,
        params={"from": None, "to": routing.team_id, "rule": routing.rule, "actor_label": _ROUTING.label},
    )


@transaction.atomic
def ticket_route(*, ticket_id: int) -> Ticket | None:
    """Give an unrouted ticket its channel's default team (a ticket opened before its channel had one). Idempotent:
    a routed ticket is left as it is. The agents hear of the change after commit, the ones who saw the ticket
    unrouted included (it leaves their queues)."""
    # of=("self",): PostgreSQL cannot lock the nullable side of an outer join; only the ticket is locked.
    ticket = Ticket.objects.select_for_update(of=("self",)).select_related("channel").filter(pk=ticket_id).first()
    if ticket is None or ticket.team_id is not None or ticket.channel is None:
        return ticket
    team_id = ticket.channel.default_team_id
    if team_id is None:
        return ticket
    updated = Ticket.objects.filter(pk=ticket.pk, team__isnull=True).update(team_id=team_id, version=F("version") + 1)
    if updated:
        event_record(
            customer_id=ticket.customer_id,
            ticket_id=ticket.pk,
            type=TimelineEvent.Type.TEAM_CHANGED,
            actor=_ROUTING,
            params={"from": None, "to": team_id, "rule": _RULE},
        )
        logger.info("tickets.ticket_routed", extra={"ticket_id": ticket.pk, "team_id": team_id})
    previous = {"team_id": ticket.team_id, "assignee_id": ticket.assignee_id}
    ticket.refresh_from_db()
    if updated:
        ticket_changed_publish(ticket=ticket, previous=previous)
    return ticket


@transaction.atomic
def tickets_route(*, ticket_ids: Iterable[int]) -> list[int]:
    """Route many new tickets (a batch import's) as ``ticket_route`` routes each, in one transaction: a query for
    the whole lot when none of them has a team to go to, instead of a transaction per ticket. Idempotent: tickets
    already routed, without a channel or default team, or gone (undone with a failed message) are skipped.
    Returns the ids routed now."""
    ids = sorted(set(ticket_ids))
    if not ids:
        return []
    # Only the tickets this changes are locked (the ticket rows only, as in ticket_route), in id order, so two
    # overlapping calls cannot deadlock.
    candidates = (
        Ticket.objects.select_for_update(of=("self",))
        .filter(pk__in=ids, team__isnull=True, channel__default_team__isnull=False)
        .order_by("pk")
        .values_list("pk", "customer_id", "channel__default_team_id")
    )
    by_team = defaultdict(list)
    customer_of = {}
    for pk, customer_id, team_id in candidates:
        by_team[team_id].append(pk)
        customer_of[pk] = customer_id
    routed = []
    for team_id, pks in by_team.items():
        Ticket.objects.filter(pk__in=pks, team__isnull=True).update(team_id=team_id, version=F("version") + 1)
        routed += pks
        for pk in pks:
            logger.info("tickets.ticket_routed", extra={"ticket_id": pk, "team_id": team_id})
    if routed:
        # The events event_record would write for each, in one insert.
        team_of = {pk: team_id for team_id, pks in by_team.items() for pk in pks}
        TimelineEvent.objects.bulk_create(
            [
                TimelineEvent(
                    customer_id=customer_of[pk],
                    ticket_id=pk,
                    type=TimelineEvent.Type.TEAM_CHANGED,
                    actor_kind=_ROUTING.kind,
                    params={"from": None, "to": team_of[pk], "rule": _RULE, "actor_label": _ROUTING.label},
                )
                for pk in sorted(routed)
            ]
        )
    return sorted(routed)
