"""Where apps that have clients of their own on the websockets plug into the transport.

Realtime knows agents and tickets; who else follows a ticket's conversation live (chat visitors, registered by the
``chat`` app in its ``AppConfig.ready``) is an audience: it says what it receives of a new message, which of its
groups hear a ticket's typing, and records that an agent read the conversation. Realtime calls every registered
audience and imports none of them.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Publication:
    """One event for some groups; ``audience`` (``{"team_id", "assignee_id"}`` of the ticket the event is about)
    as in ``realtime.publish.realtime_publish``."""

    groups: tuple[str, ...]
    event: dict
    audience: dict | None = None


class TicketAudience(Protocol):
    def message_publications(self, *, message) -> Iterable[Publication]:
        """What this audience receives of ``message`` (a ``tickets.Message`` that is no note, just committed, its
        attachments loaded). Runs in the thread that committed it; reads only."""
        ...

    def ticket_groups(self, *, ticket_id: int, customer_id: int) -> list[str]:
        """This audience's groups that follow the ticket's conversation (where an agent's typing goes)."""
        ...

    def agent_read(self, *, ticket_id: int, customer_id: int, up_to: int) -> None:
        """An agent read the ticket's conversation up to message ``up_to``; raises ``helpdesk.errors.NotFound``
        when that is no message of the ticket. The caller has checked that the agent may see the ticket."""
        ...


_audiences: list[TicketAudience] = []


def audience_register(audience: TicketAudience) -> None:
    """Add ``audience`` once (an app's ``ready`` may run again in tests)."""
    if all(type(registered) is not type(audience) for registered in _audiences):
        _audiences.append(audience)


def audiences() -> tuple[TicketAudience, ...]:
    return tuple(_audiences)


def ticket_audience_groups(*, ticket_id: int, customer_id: int) -> list[str]:
    return [
        group
        for audience in _audiences
        for group in audience.ticket_groups(ticket_id=ticket_id, customer_id=customer_id)
    ]


def ticket_agent_read(*, ticket_id: int, customer_id: int, up_to: int) -> None:
    for audience in _audiences:
        audience.agent_read(ticket_id=ticket_id, customer_id=customer_id, up_to=up_to)
