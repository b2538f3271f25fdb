"""Filling a canned response's placeholders for the ticket at hand.

The body is text an admin wrote, so it is never run through a template engine: only the known placeholders below
are replaced, by plain string substitution. ``{% ... %}``, filters and unknown names stay in the text as written,
visible to the agent before sending (nothing is evaluated, nothing is silently dropped).
"""

import re

from tickets.models import CannedResponse, Ticket

# ``{{ customer.name }}``, with or without spaces inside the braces.
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")


def canned_response_render(*, canned: CannedResponse, ticket: Ticket, agent) -> str:
    """``canned.body`` with the placeholders known for ``ticket`` and ``agent`` filled in (``ticket.customer``
    is read, so pass a ticket with its customer loaded)."""
    values = canned_placeholder_values(ticket=ticket, agent=agent)
    return canned_text_render(canned.body, values=values)


def canned_placeholder_values(*, ticket: Ticket, agent) -> dict[str, str]:
    """What each placeholder stands for; computed once per page for all the canned responses it offers."""
    customer = ticket.customer
    name = (customer.name or "").strip()
    profile = getattr(agent, "agent_profile", None)
    agent_name = (getattr(profile, "display_name", "") or "").strip() or agent.get_full_name() or agent.get_username()
    return {
        "customer.name": name,
        "customer.first_name": name.split()[0] if name else "",
        "ticket.id": str(ticket.pk),
        "ticket.subject": ticket.subject,
        "agent.name": agent_name,
    }


def canned_text_render(body: str, *, values: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        key = match.group(1)
        return values[key] if key in values else match.group(0)

    return _PLACEHOLDER.sub(replace, body)
