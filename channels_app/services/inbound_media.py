"""PLACEHOLDER (helper sms-media fills this): MMS media rows, fetched by a task and stored as attachments."""


class MediaFetchShouldRetry(Exception):
    """A fetch failed for a reason that may pass; the task retries with backoff."""


def inbound_media_queue(*, message, media) -> None:
    """Create one InboundMedia row per item of ``media`` ([{"url", "content_type"}...]) and enqueue the fetches
    after commit. Idempotent."""
    raise NotImplementedError


def inbound_media_fetch(*, media_id: int):
    raise NotImplementedError
