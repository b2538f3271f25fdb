"""PLACEHOLDER (helper realtime fills this): publishing events to channel-layer groups after commit, best-effort."""


def message_created_publish(*, message) -> None:
    """After commit, tell the message's ticket group and the agents (and, for a customer-visible chat message,
    the visitor's group) that ``message`` exists. Best-effort: a failed push is logged, never raised."""


def realtime_publish(*, groups, event: dict) -> None:
    """After commit, send ``event`` (a JSON-able dict with a "type") to each group. Best-effort."""
