"""Agents' changes to a ticket's fields: status, priority, team, assignee, tags, subject."""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from agents.models import AgentProfile, Team
from helpdesk.errors import Conflict, DomainError
from realtime.publish import ticket_changed_publish
from tickets.models import Tag, Ticket
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

_UNSET = object()


@dataclass(frozen=True)
class TicketChanges:
    """Only the fields given are changed; ``_UNSET`` means "leave as it is"."""

    status: object = _UNSET
    priority: object = _UNSET
    team_id: object = _UNSET
    assignee_id: object = _UNSET
    subject: object = _UNSET
    tags: object = _UNSET  # list of names


UNSET = _UNSET


@transaction.atomic
def ticket_update(
    *, ticket: Ticket, actor: Actor, changes: TicketChanges, expected_version: int | None = None
) -> Ticket:
    """Apply ``changes``, one timeline event per changed field. With ``expected_version``, a ticket changed by
    someone else in the meantime is refused (409) instead of overwritten."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if expected_version is not None and ticket.version != expected_version:
        raise Conflict(
            f"The ticket changed since you loaded it (version {expected_version}, now {ticket.version}); reload it.",
            code="stale",
        )
    now = timezone.now()
    updates: dict = {}
    events: list[tuple[str, dict]] = []

    if changes.status is not _UNSET and changes.status != ticket.status:
        if ticket.status == Ticket.Status.CLOSED:
            raise Conflict("A closed ticket cannot change status.", code="ticket_closed")
        if changes.status not in Ticket.Status.values:
            raise DomainError(f"Unknown status {changes.status!r}.")
        updates["status"] = changes.status
        if changes.status == Ticket.Status.SOLVED:
            updates["solved_at"] = now
        elif changes.status != Ticket.Status.CLOSED:
            updates["solved_at"] = None
        events.append((TimelineEvent.Type.STATUS_CHANGED, {"from": ticket.status, "to": changes.status}))
    if changes.priority is not _UNSET and changes.priority != ticket.priority:
        if changes.priority not in Ticket.Priority.values:
            raise DomainError(f"Unknown priority {changes.priority!r}.")
        updates["priority"] = changes.priority
        events.append((TimelineEvent.Type.PRIORITY_CHANGED, {"from": ticket.priority, "to": changes.priority}))
    if changes.team_id is not _UNSET and changes.team_id != ticket.team_id:
        if changes.team_id is not None and not Team.objects.filter(pk=changes.team_id).exists():
            raise DomainError("No such team.", code="unknown_team")
        updates["team_id"] = changes.team_id
        events.append((TimelineEvent.Type.TEAM_CHANGED, {"from": ticket.team_id, "to": changes.team_id}))
    if changes.assignee_id is not _UNSET and changes.assignee_id != ticket.assignee_id:
        if (
            changes.assignee_id is not None
            and not AgentProfile.objects.filter(user_id=changes.assignee_id, user__is_active=True).exists()
        ):
            raise DomainError("The assignee must be an active agent.", code="unknown_agent")
        updates["assignee_id"] = changes.assignee_id
        events.append((TimelineEvent.Type.ASSIGNED, {"from": ticket.assignee_id, "to": changes.assignee_id}))
    if changes.subject is not _UNSET and changes.subject != ticket.subject:
        updates["subject"] = str(changes.subject)[:500]
        events.append((TimelineEvent.Type.SUBJECT_CHANGED, {"from": ticket.subject, "to": updates["subject"]}))
    if changes.tags is not _UNSET:
        wanted = sorted({name.strip().lower()[:50] for name in changes.tags if name and name.strip()})
        current = sorted(ticket.tags.values_list("name", flat=True))
        if wanted != current:
            tags = [Tag.objects.get_or_create(name=name)[0] for name in wanted]
            ticket.tags.set(tags)
            events.append(
                (
                    TimelineEvent.Type.TAGS_CHANGED,
                    {
                        "added": sorted(set(wanted) - set(current)),
                        "removed": sorted(set(current) - set(wanted)),
                    },
                )
            )
    if not events:
        return ticket
    # Agents who lose sight of the ticket (moved to another team) still hear that it left their queue.
    before = {"team_id": ticket.team_id, "assignee_id": ticket.assignee_id}
    Ticket.objects.filter(pk=ticket.pk).update(**updates, version=F("version") + 1, updated_at=now)
    for event_type, params in events:
        event_record(customer_id=ticket.customer_id, ticket_id=ticket.pk, type=event_type, actor=actor, params=params)
    ticket.refresh_from_db()
    ticket_changed_publish(ticket=ticket, previous=before)
    return ticket
