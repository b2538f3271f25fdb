"""Routing a new ticket. For now: to its channel's default team. Rules, skills and load-based assignment build
on this entry point in the routing issue."""

import logging

from django.db import transaction
from django.db.models import F

from tickets.models import Ticket, TimelineEvent
from tickets.services.events import event_record
from tickets.types import Actor

logger = logging.getLogger(__name__)


@transaction.atomic
def ticket_route(*, ticket_id: int) -> Ticket | None:
    """Give an unrouted ticket its channel's default team. Idempotent: a routed ticket is left as it is."""
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
            actor=Actor.system("routing"),
            params={"from": None, "to": team_id, "rule": "channel_default_team"},
        )
        logger.info("tickets.ticket_routed", extra={"ticket_id": ticket.pk, "team_id": team_id})
    ticket.refresh_from_db()
    return ticket
