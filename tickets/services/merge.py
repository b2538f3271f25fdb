"""Merging one ticket into another: the source's conversation continues on the target.

What moves: the source's messages (with their attachments, deliveries and provider ids, so the threading rules
find the target for any later answer to them: a quoted Message-ID names a message, and the message is now the
target's), and its email participants (so people copied on the source may go on writing). What stays: the source's
own timeline events, and the source row itself, closed and pointing at the target (``merged_into``): a reply token
or subject reference naming the source is followed to the target by ingest (``_follow_merges``), and the console
redirects there.
"""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from helpdesk.errors import Conflict, NotFound
from realtime.publish import ticket_changed_publish
from tickets.models import Message, Ticket, TicketParticipant
from tickets.selectors.tickets import ticket_ids_visible
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

logger = logging.getLogger(__name__)


@transaction.atomic
def ticket_merge(*, source: Ticket, target: Ticket, actor: Actor) -> Ticket:
    """Merge ``source`` into ``target`` and return the target (reloaded).

    Locks both rows, in id order (two merges of the same pair in opposite directions cannot deadlock; the second
    sees the first's result and is refused). Refused with Conflict: a ticket into itself, into a merged or closed
    ticket, a closed source that was not merged, or a merge that would make a cycle. Merging a source already merged
    into this very target returns the target unchanged (a retried request does nothing twice). ``NotFound`` when
    the actor is an agent who may not see both tickets as they are once locked (nothing moves).
    """
    if source.pk == target.pk:
        raise Conflict("A ticket cannot be merged into itself.", code="merge_into_self")
    locked = {t.pk: t for t in Ticket.objects.select_for_update().filter(pk__in=[source.pk, target.pk]).order_by("pk")}
    source, target = locked[source.pk], locked[target.pk]
    _merge_access_check(actor=actor, ticket_ids={source.pk, target.pk})
    if source.merged_into_id == target.pk:
        return target
    if source.merged_into_id is not None:
        raise Conflict(f"Ticket #{source.pk} was already merged into #{source.merged_into_id}.", code="already_merged")
    if target.merged_into_id is not None:
        raise Conflict(
            f"Ticket #{target.pk} was merged into #{target.merged_into_id}; merge into that one instead.",
            code="target_merged",
        )
    if target.status == Ticket.Status.CLOSED:
        raise Conflict(f"Ticket #{target.pk} is closed; it cannot take in another ticket.", code="target_closed")
    if source.status == Ticket.Status.CLOSED:
        raise Conflict(f"Ticket #{source.pk} is closed; it cannot be merged.", code="source_closed")
    if _merged_chain_reaches(start=target, goal=source.pk):
        raise Conflict("This merge would make a cycle.", code="merge_cycle")

    now = timezone.now()
    message_ids = list(Message.objects.filter(ticket=source).order_by("pk").values_list("pk", flat=True))
    _free_clashing_idempotency_keys(source=source, target=target)
    Message.objects.filter(ticket=source).update(ticket=target, customer_id=target.customer_id)
    participants = [
        TicketParticipant(ticket=target, email=p.email, role=p.role, first_seen_message_id=p.first_seen_message_id)
        for p in TicketParticipant.objects.filter(ticket=source)
    ]
    TicketParticipant.objects.bulk_create(participants, ignore_conflicts=True)

    Ticket.objects.filter(pk=source.pk).update(
        merged_into=target, status=Ticket.Status.CLOSED, version=F("version") + 1, updated_at=now
    )
    latest = max(filter(None, [source.last_message_at, target.last_message_at]), default=None)
    latest_customer = max(
        filter(None, [source.last_customer_message_at, target.last_customer_message_at]), default=None
    )
    Ticket.objects.filter(pk=target.pk).update(
        last_message_at=latest,
        last_customer_message_at=latest_customer,
        version=F("version") + 1,
        updated_at=now,
    )
    params = {"source_id": source.pk, "target_id": target.pk, "message_ids": message_ids}
    event_record(
        customer_id=source.customer_id,
        ticket_id=source.pk,
        type=TimelineEvent.Type.TICKET_MERGED,
        actor=actor,
        params={**params, "role": "source", "from_status": source.status},
    )
    event_record(
        customer_id=target.customer_id,
        ticket_id=target.pk,
        type=TimelineEvent.Type.TICKET_MERGED,
        actor=actor,
        params={**params, "role": "target"},
    )
    logger.info(
        "tickets.ticket_merged",
        extra={"source_id": source.pk, "target_id": target.pk, "messages_moved": len(message_ids)},
    )
    target.refresh_from_db()
    source.refresh_from_db()
    # Open consoles of either ticket learn it changed (the source's page offers the way to the target).
    ticket_changed_publish(ticket=source)
    ticket_changed_publish(ticket=target)
    return target


def _merge_access_check(*, actor: Actor, ticket_ids: set[int]) -> None:
    """An agent merges only tickets they may see, as they are now that they are locked (either may have moved to
    another team since the agent's page read it): ``NotFound`` otherwise, as for any ticket they may not see."""
    is_agent = actor.kind == TimelineEvent.ActorKind.AGENT and actor.user is not None
    if is_agent and ticket_ids_visible(user=actor.user, ticket_ids=ticket_ids) != ticket_ids:
        raise NotFound("No such ticket.")


def _merged_chain_reaches(*, start: Ticket, goal: int) -> bool:
    """Whether following ``merged_into`` from ``start`` reaches ticket ``goal`` (a guard: a merged target is
    refused above, so the chain is normally one link)."""
    seen = set()
    current = start
    while current.merged_into_id is not None and current.pk not in seen:
        if current.merged_into_id == goal:
            return True
        seen.add(current.pk)
        current = Ticket.objects.only("pk", "merged_into_id").get(pk=current.merged_into_id)
    return False


def _free_clashing_idempotency_keys(*, source: Ticket, target: Ticket) -> None:
    """Idempotency keys are unique per ticket; a source key the target already uses is cleared on the moved
    message (the source is closed, so nobody retries a send on it any more)."""
    target_keys = Message.objects.filter(ticket=target).exclude(idempotency_key="").values("idempotency_key")
    Message.objects.filter(ticket=source, idempotency_key__in=target_keys).update(idempotency_key="")
