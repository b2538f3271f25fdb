"""PLACEHOLDER (helper realtime fills this): who is connected (agents, chat visitors), from the websocket
consumers, kept in the cache with a TTL so a crashed server's connections expire."""


def agents_online(*, channel=None) -> bool:
    """Whether any agent is connected (one who could answer a chat on ``channel``)."""
    return False


def visitor_is_online(*, visitor_public_id) -> bool:
    """Whether the chat visitor has a widget connection open now."""
    return False
