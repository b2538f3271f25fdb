"""Writing timeline events: every change to a ticket or a customer is a row."""

from tickets.models import TimelineEvent
from tickets.types import Actor


def event_record(
    *, customer_id: int, type: str, actor: Actor, ticket_id: int | None = None, params: dict | None = None
):
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
