"""Importing raw email (files, mbox, Maildir) into an email channel, outside the webhook path.

Each message goes through the same two steps as a webhook delivery: stored raw once per Message-ID
(``inbound_event_receive``), then parsed and ingested (``inbound_event_process``), here synchronously and without
a task in the broker, so an import of a large mbox needs no worker.
"""

import email.policy
import email.utils
import logging
import mailbox
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.parser import BytesParser
from itertools import islice
from pathlib import Path

from django.db import transaction

from channels_app.email.parsing import message_provider_id
from channels_app.models import Channel, InboundEvent
from channels_app.services.inbound_process import DONE, ProcessingShouldRetry, inbound_event_process
from channels_app.services.inbound_receive import inbound_event_receive

logger = logging.getLogger(__name__)

IMPORT_BATCH_SIZE = 100


@dataclass(frozen=True)
class ImportOutcome:
    """What became of one raw message: ``status`` is one of ingested, threaded, duplicate, bounce, quarantined,
    failed."""

    status: str
    event_id: int
    reason: str = ""


def email_import(*, channel: Channel, raw: bytes) -> ImportOutcome:
    """Store and process one raw message, through the same services as a webhook delivery. The same
    Message-ID again is a duplicate and changes nothing. Bad messages are quarantined with the reason; an
    unexpected error leaves the event failed (retryable from the admin) and the import goes on.

    Storing and processing share one transaction (processing runs in its own savepoint, so a failure there
    still commits the raw message, marked failed): one durable commit per message instead of three. A
    database error that stops the transaction raises, and nothing of the message is kept: the caller keeps
    the message (an MTA retries, a rerun of the import takes it again)."""
    with transaction.atomic():
        return _email_import(channel=channel, raw=raw)


def email_import_many(
    *, channel: Channel, messages: Iterable[tuple[str, bytes]], batch_size: int = IMPORT_BATCH_SIZE
) -> Iterator[tuple[str, ImportOutcome]]:
    """``(label, outcome)`` for each ``(label, raw)`` of a bulk import, committed ``batch_size`` messages at a
    time: a mailbox is imported without a durable commit per message. Each message still has its own savepoint,
    so one bad message affects no other; a database error stops the import and loses the uncommitted batch
    only, which a rerun takes again (every message is imported once, by Message-ID). Routing of the batch's new
    tickets starts when it commits."""
    iterator = iter(messages)
    while True:
        with transaction.atomic():
            batch = [(label, _email_import_in_savepoint(channel, raw)) for label, raw in islice(iterator, batch_size)]
        if not batch:
            return
        yield from batch


def _email_import_in_savepoint(channel: Channel, raw: bytes) -> ImportOutcome:
    with transaction.atomic():
        return _email_import(channel=channel, raw=raw)


def _email_import(*, channel: Channel, raw: bytes) -> ImportOutcome:
    raw = bytes(raw)
    event, created = inbound_event_receive(
        channel=channel, provider_id=message_provider_id(raw), raw=raw, content_type="message/rfc822", enqueue=False
    )
    if not created and event.status in DONE:
        return ImportOutcome("duplicate", event.pk)
    try:
        results = inbound_event_process(event_id=event.pk, event=event if created else None)
    except ProcessingShouldRetry:
        results = []
    if results:
        # Processed: results come back only then.
        result = results[0]
        if not result.is_new_message:
            return ImportOutcome("duplicate", event.pk)
        return ImportOutcome("ingested" if result.is_new_ticket else "threaded", event.pk)
    event.refresh_from_db(fields=["status", "reason"])
    if event.status == InboundEvent.Status.PROCESSED:
        # Processed into no message: a bounce, recorded on the delivery it returns (the reason says which).
        return ImportOutcome("bounce", event.pk, event.reason)
    return ImportOutcome(event.status, event.pk, event.reason)


def raw_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(label, raw bytes)`` for every message at ``path``: a Maildir (cur/ new/ tmp/), a directory of files
    (recursively, hidden files skipped), an mbox file (first line starts with "From "), or one message file."""
    path = Path(path)
    if path.is_dir():
        if all((path / name).is_dir() for name in ("cur", "new", "tmp")):
            box = mailbox.Maildir(str(path), factory=None, create=False)
            # Maildir file names do not sort by arrival; oldest first, so replies find what they answer.
            for key in sorted(box.keys(), key=lambda key: (_maildir_date(box, key), key)):
                with box.get_file(key) as handle:
                    yield f"{path}:{key}", handle.read()
            return
        for child in sorted(path.iterdir()):
            if child.name.startswith("."):
                continue
            yield from raw_messages(child)
        return
    with path.open("rb") as handle:
        first_line = handle.readline()
    if first_line.startswith(b"From "):
        box = mailbox.mbox(str(path), factory=None, create=False)
        try:
            for index, key in enumerate(box.keys()):
                # get_bytes() leaves out the "From " separator line; ">From " escaping is the sender's.
                yield f"{path}#{index + 1}", box.get_bytes(key)
        finally:
            box.close()
        return
    yield str(path), path.read_bytes()


def _maildir_date(box: mailbox.Maildir, key: str) -> float:
    """The Date header as a timestamp, else the file's delivery time."""
    try:
        with box.get_file(key) as handle:
            headers = BytesParser(policy=email.policy.compat32).parse(handle, headersonly=True)
        return email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
    except Exception:
        return float(box.get_message(key).get_date())
