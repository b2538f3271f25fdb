from dataclasses import dataclass
from datetime import datetime

# Steps of a channel preference besides a named channel (a Channel or its id), tried in the caller's order.
PREFERRED = "preferred"  # the customer's preferred channel, set on their profile
LAST_USED = "last_used"  # the channel they last wrote on


@dataclass(frozen=True)
class OutreachResult:
    """What ``outreach_send`` decided. ``status`` is an ``OutreachMessage.Status``; ``reason`` and ``detail`` say
    why a message was not sent (or, deferred, until when it waits)."""

    outreach_id: int
    status: str
    reason: str = ""
    detail: str = ""
    channel_id: int | None = None
    message_id: int | None = None
    ticket_id: int | None = None
    send_after: datetime | None = None

    @property
    def is_sent(self) -> bool:
        return self.status == "sent"
