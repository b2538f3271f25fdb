"""The agent console's queues: which tickets each queue holds, filtered, searched and paged by keyset.

Every queue is scoped to what the agent may see (``ticket_visibility_q``) and leaves merged tickets out. Tickets are
ordered by last activity, newest first: ``COALESCE(last_message_at, created_at)``, then id. The cursor is that
pair, so a page costs one index range scan however deep it is (never OFFSET), and tickets with the same activity
time are neither repeated nor skipped across pages. The PostgreSQL indexes for these scans are in migration
``tickets/0005_queue_search``; ``ACTIVITY`` must stay the expression they index.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.models import AgentProfile, Team
from agents.selectors import agent_team_ids
from helpdesk.errors import DomainError
from tickets.models import Tag, Ticket
from tickets.selectors.search import ticket_search_q
from tickets.selectors.tickets import ticket_visibility_q

PAGE_SIZE = 50
# The sidebar counts stop here ("1000+"): an exact count of a large queue reads every row of it, a capped one at
# most this many index entries, so the page costs the same with a thousand tickets or a million.
COUNT_CAP = 1000
ACTIVITY = Coalesce("last_message_at", "created_at")
# Statuses in which the next move is ours: pending waits on the customer, on hold on a third party.
WAITING_ON_US = (Ticket.Status.NEW, Ticket.Status.OPEN)
SLA_AT_RISK_PRIORITIES = (Ticket.Priority.HIGH, Ticket.Priority.URGENT)
TAG_OPTIONS_LIMIT = 200
INVALID_CURSOR = "This page link is not valid (its position was changed or cut off)."
NO_VALUE = "none"  # the team / assignee filter value meaning "no team" / "nobody"


@dataclass(frozen=True)
class Queue:
    slug: str
    title: str
    description: str


QUEUES = (
    Queue("mine", "Mine", "Active tickets assigned to you."),
    Queue("unassigned", "Unassigned", "Active tickets nobody is assigned to."),
    Queue("teams", "My teams", "Active tickets of your teams."),
    Queue("open", "All open", "Every active ticket you may see: new, open, pending and on hold."),
    Queue("pending", "Pending", "Tickets waiting on the customer."),
    Queue("sla-at-risk", "SLA at risk", ""),  # described by sla_at_risk_description(), which reads the setting
    Queue("all", "All tickets", "Every ticket you may see, solved and closed included (for search)."),
)
QUEUES_BY_SLUG = {queue.slug: queue for queue in QUEUES}


@dataclass(frozen=True)
class QueueFilters:
    """Validated filter values; empty means "any". ``team``/``assignee`` are an id or ``NO_VALUE``."""

    channel: str = ""
    status: str = ""
    priority: str = ""
    tag: str = ""
    team: int | str | None = None
    assignee: int | str | None = None
    q: str = ""


@dataclass(frozen=True)
class FilterOptions:
    teams: list[tuple[int, str]]
    agents: list[tuple[int, str]]
    tags: list[str]


@dataclass(frozen=True)
class QueuePage:
    tickets: list[Ticket]
    next_cursor: str | None


def sla_at_risk_hours() -> int:
    return int(settings.HELPDESK.get("SLA_AT_RISK_HOURS", 4))


def sla_at_risk_description() -> str:
    hours = sla_at_risk_hours()
    return (
        f"High and urgent tickets, new or open, whose customer wrote more than {hours} hour{'s' if hours != 1 else ''}"
        " ago and has had no answer from an agent since. (No SLA policies exist yet: this is the stand-in rule; the"
        " threshold is the SLA_AT_RISK_HOURS setting.)"
    )


def queue_tickets(
    *, user, queue: str, filters: QueueFilters = QueueFilters(), cursor: str | None = None, limit: int = PAGE_SIZE
) -> QueuePage:
    """One page of ``queue`` for ``user``: at most ``limit`` tickets after ``cursor``, with their customer, channel,
    team, assignee and tags loaded (two queries whatever the page holds). Raises DomainError(code="invalid_cursor")
    for a cursor this module did not make."""
    position = _decode(cursor) if cursor else None
    tickets = queue_filter(queue_queryset(user=user, queue=queue), filters).annotate(activity=ACTIVITY)
    if position is not None:
        at, ticket_id = position
        # "activity <= at" is the index range condition; the OR only sorts out the rows at exactly ``at``.
        tickets = tickets.filter(Q(activity__lte=at) & (Q(activity__lt=at) | Q(pk__lt=ticket_id)))
    rows = list(
        tickets.select_related("customer", "channel", "team", "assignee__agent_profile")
        .prefetch_related("tags")
        .order_by(F("activity").desc(), F("pk").desc())[: limit + 1]
    )
    page = rows[:limit]
    next_cursor = _encode(page[-1].activity, page[-1].pk) if len(rows) > limit else None
    return QueuePage(tickets=page, next_cursor=next_cursor)


def queue_queryset(*, user, queue: str) -> QuerySet[Ticket]:
    """The tickets of ``queue`` that ``user`` may see (unordered, unfiltered). Unknown queue: DomainError."""
    if queue not in QUEUES_BY_SLUG:
        raise DomainError(f"There is no queue named {queue!r}.", code="unknown_queue")
    tickets = Ticket.objects.filter(ticket_visibility_q(user=user), merged_into__isnull=True)
    active = Q(status__in=Ticket.ACTIVE_STATUSES)
    if queue == "mine":
        return tickets.filter(active, assignee_id=user.pk)
    if queue == "unassigned":
        return tickets.filter(active, assignee__isnull=True)
    if queue == "teams":
        return tickets.filter(active, team_id__in=agent_team_ids(user))
    if queue == "open":
        return tickets.filter(active)
    if queue == "pending":
        return tickets.filter(status=Ticket.Status.PENDING)
    if queue == "sla-at-risk":
        return tickets.filter(sla_at_risk_q(now=timezone.now()))
    return tickets


def sla_at_risk_q(*, now: datetime) -> Q:
    """The stand-in for an SLA until SLA policies exist: a high or urgent ticket, new or open, whose customer's
    latest message is older than ``SLA_AT_RISK_HOURS`` and is still the ticket's latest message (agents' replies
    move ``last_message_at`` past it; internal notes do not, since the customer has not been answered)."""
    return Q(
        status__in=WAITING_ON_US,
        priority__in=SLA_AT_RISK_PRIORITIES,
        last_customer_message_at__lte=now - timedelta(hours=sla_at_risk_hours()),
        last_message_at__lte=F("last_customer_message_at"),
    )


def queue_counts(*, user, cap: int = COUNT_CAP) -> dict[str, int]:
    """Tickets per queue for the sidebar, each counted up to ``cap + 1`` (show "cap+" beyond ``cap``), in one
    query: each count is a sub-select with a LIMIT, so a large queue costs ``cap`` index entries, not its size."""
    parts, params = [], []
    for queue in QUEUES:
        capped = queue_queryset(user=user, queue=queue.slug).values("pk")[: cap + 1]
        try:
            sql, sql_params = capped.query.sql_with_params()
        except EmptyResultSet:  # e.g. "my teams" of an agent in no team: nothing to ask the database
            parts.append("0")
            continue
        # Django compiled ``sql`` and it carries its values as ``params``: nothing from the request is pasted in.
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped)")  # noqa: S608
        params.extend(sql_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return {queue.slug: count for queue, count in zip(QUEUES, row, strict=True)}


def queue_filter_options(*, tag_limit: int = TAG_OPTIONS_LIMIT) -> FilterOptions:
    """What the filter form offers: every team, every active agent, and the first ``tag_limit`` tags by name
    (tags are free text and may be many; the tag field also accepts any name typed in)."""
    teams = list(Team.objects.order_by("name").values_list("pk", "name"))
    agents = [
        (user_id, display_name or username)
        for user_id, display_name, username in AgentProfile.objects.filter(user__is_active=True)
        .order_by("display_name", "user__username")
        .values_list("user_id", "display_name", "user__username")
    ]
    tags = list(Tag.objects.order_by("name").values_list("name", flat=True)[:tag_limit])
    return FilterOptions(teams=teams, agents=agents, tags=tags)


def queue_filter(tickets: QuerySet[Ticket], filters: QueueFilters) -> QuerySet[Ticket]:
    """``tickets`` narrowed by ``filters`` (already validated: the view's form checks choices and ids)."""
    if filters.channel:
        tickets = tickets.filter(channel__kind=filters.channel)
    if filters.status:
        tickets = tickets.filter(status=filters.status)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    if filters.tag:
        # The tag's id once (a scalar sub-select), so that each ticket the queue walks costs one probe of the
        # (ticket, tag) unique index rather than a join to the tags table: half the time at a million tickets.
        tag_id = Subquery(Tag.objects.filter(name=filters.tag).values("pk")[:1])
        tagged = Ticket.tags.through.objects.filter(ticket_id=OuterRef("pk"), tag_id=tag_id)
        tickets = tickets.filter(Exists(tagged))
    if filters.team == NO_VALUE:
        tickets = tickets.filter(team__isnull=True)
    elif filters.team is not None:
        tickets = tickets.filter(team_id=filters.team)
    if filters.assignee == NO_VALUE:
        tickets = tickets.filter(assignee__isnull=True)
    elif filters.assignee is not None:
        tickets = tickets.filter(assignee_id=filters.assignee)
    if filters.q:
        tickets = tickets.filter(ticket_search_q(text=filters.q))
    return tickets


def _encode(at: datetime, ticket_id: int) -> str:
    raw = f"{at.isoformat()}|{ticket_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, id_text = raw.split("|")
        at, ticket_id = datetime.fromisoformat(at_text), int(id_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise DomainError(INVALID_CURSOR, code="invalid_cursor") from exc
    if at.tzinfo is None or ticket_id < 1:
        raise DomainError(INVALID_CURSOR, code="invalid_cursor")
    return at, ticket_id
