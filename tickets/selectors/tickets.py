"""Reads of tickets, always scoped to what the agent may see."""

from django.db.models import Q, QuerySet

from agents.selectors import agent_team_ids, user_is_admin
from helpdesk.errors import NotFound
from tickets.models import Message, Ticket


def ticket_visibility_q(*, user, prefix: str = "") -> Q:
    """Admins see every ticket; an agent sees tickets of their teams, tickets with no team, and their own.

    ``prefix`` applies the rule through a relation (``"ticket__"`` for messages and events)."""
    if user_is_admin(user):
        return Q()
    return (
        Q(**{f"{prefix}team__isnull": True})
        | Q(**{f"{prefix}team_id__in": agent_team_ids(user)})
        | Q(**{f"{prefix}assignee_id": user.pk})
    )


def ticket_list_for_agent(*, user, status: str | None = None, customer_id: int | None = None) -> QuerySet[Ticket]:
    tickets = (
        Ticket.objects.filter(ticket_visibility_q(user=user))
        .select_related("customer", "team", "assignee", "channel")
        .prefetch_related("tags")
        .order_by("-last_message_at", "-id")
    )
    if status:
        tickets = tickets.filter(status=status)
    if customer_id:
        tickets = tickets.filter(customer_id=customer_id)
    return tickets


def ticket_get_for_agent(*, user, ticket_id: int) -> Ticket:
    """The ticket, or NotFound whether it does not exist or the agent may not see it (no existence leak)."""
    ticket = (
        Ticket.objects.filter(ticket_visibility_q(user=user), pk=ticket_id)
        .select_related("customer", "team", "assignee", "channel", "customer__last_channel")
        .prefetch_related("tags")
        .first()
    )
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket


def ticket_ids_visible(*, user, ticket_ids) -> set[int]:
    """Which of ``ticket_ids`` the agent may see now (one query; none for an admin, who sees every ticket, or for
    no ids)."""
    ids = set(ticket_ids)
    if not ids or user_is_admin(user):
        return ids
    return set(Ticket.objects.filter(ticket_visibility_q(user=user), pk__in=ids).values_list("pk", flat=True))


def customer_tickets_all_visible(*, user, customer_ids) -> bool:
    """Whether the agent may see every ticket of these customers (merged ones included): what merging or
    unmerging them would move. One query; none for an admin."""
    if user_is_admin(user):
        return True
    hidden = Ticket.objects.filter(customer_id__in=set(customer_ids)).exclude(ticket_visibility_q(user=user))
    return not hidden.exists()


def ticket_messages(*, ticket: Ticket) -> QuerySet[Message]:
    return (
        Message.objects.filter(ticket=ticket)
        .select_related("channel", "author", "delivery")
        .prefetch_related("attachments", "media")
        .order_by("created_at", "id")
    )
