from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who made a change: an agent (with their user), the customer, the system, or an integration."""

    kind: str  # timeline.models.TimelineEvent.ActorKind
    user: Any = None
    label: str = ""

    @classmethod
    def agent(cls, user) -> "Actor":
        return cls(kind="agent", user=user)

    @classmethod
    def customer(cls) -> "Actor":
        return cls(kind="customer")

    @classmethod
    def system(cls, label: str = "") -> "Actor":
        return cls(kind="system", label=label)

    @classmethod
    def integration(cls, label: str) -> "Actor":
        return cls(kind="integration", label=label)
