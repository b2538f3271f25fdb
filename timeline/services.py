"""Writing timeline events: every change to a ticket or a customer is a row."""

from timeline.models import TimelineEvent
from timeline.types import Actor


def event_record(
    *, customer_id: int, type: str, actor: Actor, ticket_id: int | None = None, params: dict | None = None
):
    """One event on the customer's timeline (and on the ticket's, with ``ticket_id``), in the caller's
    transaction."""
    params = dict(params or {})
    if actor.label:
        params.setdefault("actor_label", actor.label)
    return TimelineEvent.objects.create(
        customer_id=customer_id,
        ticket_id=ticket_id,
        type=type,
        actor_kind=actor.kind,
        actor=actor.user if actor.kind == TimelineEvent.ActorKind.AGENT else None,
        params=params,
    )
