"""The customer timeline: every message and timeline event of the customer, on every channel and ticket, and
their context events, newest first.

Three tables, one keyset cursor: each page asks each table for at most ``limit + 1`` rows older than the
cursor (one indexed range scan each), merges them, and keeps ``limit``. The query count is fixed whatever the
customer's history, and deep pages cost what the first page costs.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from customers.models import ContextEvent, Customer
from helpdesk.errors import DomainError
from tickets.models import Message
from tickets.selectors.tickets import ticket_visibility_q
from timeline.models import TimelineEvent

# Ties on the timestamp are broken by kind, then by id, all descending.
KIND_RANK = {"message": 3, "event": 2, "context": 1}


@dataclass(frozen=True)
class TimelineEntry:
    kind: str  # "message" | "event" | "context"
    at: datetime
    id: int
    item: object


@dataclass(frozen=True)
class TimelinePage:
    entries: list[TimelineEntry]
    next_cursor: str | None


def customer_timeline(
    *,
    customer: Customer,
    viewer=None,
    cursor: str | None = None,
    limit: int = 50,
    include_notes: bool = True,
) -> TimelinePage:
    """One page of the timeline. With ``viewer`` (an agent), messages and events of tickets the agent may not
    see are left out; without, everything is shown (integration tokens with ``customers:read``)."""
    position = _decode(cursor) if cursor else None
    fetch = limit + 1
    messages = Message.objects.filter(customer=customer)
    events = TimelineEvent.objects.filter(customer=customer)
    visible = ticket_visibility_q(user=viewer, prefix="ticket__") if viewer is not None else Q()
    # An empty Q means "every ticket" (an admin); OR-ed with another Q it would vanish and leave only that one.
    if visible:
        messages = messages.filter(visible)
        events = events.filter(Q(ticket__isnull=True) | visible)
    if not include_notes:
        messages = messages.exclude(direction=Message.Direction.NOTE)
        # The event would reveal that a note exists and whom it mentions.
        events = events.exclude(type__in=[TimelineEvent.Type.NOTE_ADDED, TimelineEvent.Type.AGENT_MENTIONED])
    messages = (
        _after(messages, "created_at", "message", position)
        .select_related("channel", "author", "delivery", "ticket")
        .prefetch_related("attachments", "media")
        .order_by("-created_at", "-id")[:fetch]
    )
    events = (
        _after(events, "created_at", "event", position)
        .select_related("actor", "ticket")
        .order_by("-created_at", "-id")[:fetch]
    )
    contexts = _after(ContextEvent.objects.filter(customer=customer), "occurred_at", "context", position).order_by(
        "-occurred_at", "-id"
    )[:fetch]
    entries = [TimelineEntry("message", m.created_at, m.pk, m) for m in messages]
    entries += [TimelineEntry("event", e.created_at, e.pk, e) for e in events]
    entries += [TimelineEntry("context", c.occurred_at, c.pk, c) for c in contexts]
    entries.sort(key=lambda entry: (entry.at, KIND_RANK[entry.kind], entry.id), reverse=True)
    page = entries[:limit]
    next_cursor = _encode(page[-1]) if len(entries) > limit else None
    return TimelinePage(entries=page, next_cursor=next_cursor)


def _after(queryset: QuerySet, time_field: str, kind: str, position) -> QuerySet:
    """Rows strictly after ``position`` in the timeline order (newest first)."""
    if position is None:
        return queryset
    at, cursor_rank, cursor_id = position
    rank = KIND_RANK[kind]
    older = Q(**{f"{time_field}__lt": at})
    if rank < cursor_rank:
        return queryset.filter(older | Q(**{time_field: at}))
    if rank == cursor_rank:
        return queryset.filter(older | Q(**{time_field: at, "pk__lt": cursor_id}))
    return queryset.filter(older)


def _encode(entry: TimelineEntry) -> str:
    raw = f"{entry.at.isoformat()}|{KIND_RANK[entry.kind]}|{entry.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, rank_text, id_text = raw.split("|")
        at = datetime.fromisoformat(at_text)
        rank, entry_id = int(rank_text), int(id_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise DomainError("Invalid cursor.", code="invalid_cursor") from exc
    if rank not in KIND_RANK.values() or at.tzinfo is None:
        raise DomainError("Invalid cursor.", code="invalid_cursor")
    return at, rank, entry_id
