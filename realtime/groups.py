"""Channel-layer group names: one place, so publishers and consumers agree.

Group names allow only ASCII letters, digits, hyphens, underscores and periods, under 100 characters.
"""

AGENTS = "agents"  # every connected agent: new tickets and messages for the queues


def agent_group(user_id: int) -> str:
    """Every connection of one agent: control events about their access (``realtime.publish`` ACCESS_CHANGED)."""
    return f"agent.{int(user_id)}"


def ticket_group(ticket_id: int) -> str:
    """Agents viewing one ticket: its messages, typing, read receipts, who else is viewing."""
    return f"ticket.{int(ticket_id)}"


def group_ticket_id(group: str) -> int | None:
    """The ticket a ``ticket_group`` name is for; None for any other group."""
    prefix, _, ticket_id = group.partition(".")
    return int(ticket_id) if prefix == "ticket" and ticket_id.isascii() and ticket_id.isdigit() else None


def visitor_group(visitor_public_id) -> str:
    """Every connection (tabs) of one chat visitor: only their own conversation's messages, never notes."""
    return f"chat.visitor.{str(visitor_public_id).replace('-', '')}"


def group_visitor_id(group: str) -> str:
    """The visitor public id (hex) a ``visitor_group`` name is for."""
    return group.removeprefix("chat.visitor.")
