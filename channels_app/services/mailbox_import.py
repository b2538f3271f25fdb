"""Importing raw email (files, mbox, Maildir: read by ``channels_app.providers.email.mail_files``) into an email
channel, outside the webhook path.

Each message goes through the same two steps as a webhook delivery: stored raw once per Message-ID (an
``InboundEvent``), then parsed and ingested by the same services (``inbound_messages_dispatch``, which calls
``message_ingest``), here synchronously and without a task in the broker, so an import of a large mbox needs no
worker.

A bulk import (``email_import_many``) takes a batch at a time: it parses the batch first (in ``parse_workers``
processes when asked, overlapping the database work of the previous batch), finds which Message-IDs are already
stored with one query, stores the new raw messages with one insert and their outcomes with one update per outcome,
and ingests the messages one by one, in order, through ``message_ingest`` (``tickets.services.ingest_batch`` reads
what it can for the whole batch at once). The messages share one savepoint; if one of them raises, the batch's
messages are undone and taken again, each in a savepoint of its own, so a bad message still affects no other.
Anything out of the ordinary (a Message-ID already stored, twice in one batch, or stored meanwhile by another
process) goes through ``email_import``'s own path, so the outcome is always the one a single import would give.
"""

import logging
import multiprocessing
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from channels_app.adapters.base import PayloadError
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel, InboundEvent
from channels_app.providers.email.parsing import message_provider_id
from channels_app.services.inbound_dispatch import inbound_messages_dispatch
from channels_app.services.inbound_process import DONE, ProcessingShouldRetry, inbound_event_process
from channels_app.services.inbound_receive import inbound_event_receive
from channels_app.types import InboundMessage
from realtime.groups import AGENTS
from realtime.publish import realtime_publish
from tickets.errors import IngestRejected
from tickets.services.ingest_batch import IngestBatch, ingest_batch, pending_flush

try:
    from django.db.backends.postgresql.base import ServerBindingCursor
except (ImportError, ImproperlyConfigured):  # no psycopg 3: parameters are bound as Django binds them
    ServerBindingCursor = None

logger = logging.getLogger(__name__)

IMPORT_BATCH_SIZE = 100
# How often a batch looks up its stored Message-IDs again when another import stored one meanwhile, before it takes
# its messages one by one.
STORE_ATTEMPTS = 3
CONTENT_TYPE = "message/rfc822"
MAX_REASON_CHARS = 2000
# What inbound_event_process quarantines (bad input, no retry); anything else marks the event failed.
_QUARANTINE_ERRORS = (PayloadError, IngestRejected, AdapterNotFound)
PROCESSED, QUARANTINED, FAILED = (
    str(InboundEvent.Status.PROCESSED.value),
    str(InboundEvent.Status.QUARANTINED.value),
    str(InboundEvent.Status.FAILED.value),
)


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
    *,
    channel: Channel,
    messages: Iterable[tuple[str, bytes]],
    batch_size: int = IMPORT_BATCH_SIZE,
    parse_workers: int = 1,
) -> Iterator[tuple[str, ImportOutcome]]:
    """``(label, outcome)`` for each ``(label, raw)`` of a bulk import, committed ``batch_size`` messages at a
    time: a mailbox is imported without a durable commit per message. One bad message affects no other (see the
    module's docstring); a database error that stops the transaction stops the import and loses the uncommitted
    batch only, which a rerun takes again (every message is imported once, by Message-ID). Routing of the batch's
    new tickets starts when it commits.

    ``parse_workers`` > 1 parses in that many forked processes (parsing is pure Python and needs no database),
    the next batch while this one is written. Outcomes, tickets and threads are the same as one ``email_import``
    per message in the same order."""
    iterator = iter(messages)
    with _parser(parse_workers) as executor:
        pending = _parse_submit(executor, parse_workers, channel, list(islice(iterator, batch_size)))
        while pending is not None:
            chunk, parsed_future = pending
            parsed = parsed_future.result() if isinstance(parsed_future, Future) else parsed_future
            following = list(islice(iterator, batch_size))
            pending = _parse_submit(executor, parse_workers, channel, following) if following else None
            with transaction.atomic():
                outcomes = _batch_import(channel, chunk, parsed)
                _imported_publish(channel, outcomes)
            yield from outcomes


def _imported_publish(channel: Channel, outcomes) -> None:
    """One live event per committed batch rather than one per message: the agents' queues refresh once, and a
    mailbox import does not flood every console with thousands of pushes."""
    count = sum(1 for _, outcome in outcomes if outcome.status in ("ingested", "threaded"))
    if count:
        realtime_publish(groups=[AGENTS], event={"type": "messages_imported", "channel_id": channel.pk, "count": count})


@dataclass(frozen=True)
class _Parsed:
    """One raw message, parsed: its provider id, and its messages or why it cannot be taken in."""

    provider_id: str
    messages: tuple[InboundMessage, ...] = ()
    error: str = ""  # a PayloadError's reason: quarantined
    is_unexpected: bool = False  # anything else went wrong: left to email_import, which records it


def _parse_one(channel: Channel, raw: bytes) -> _Parsed:
    try:
        messages = adapter_for(channel).parse(channel=channel, payload=raw, content_type=CONTENT_TYPE)
    except PayloadError as exc:
        return _Parsed(message_provider_id(raw)[:255], error=str(exc))
    except Exception:
        return _Parsed(message_provider_id(raw)[:255], is_unexpected=True)
    # The parser reads the Message-ID from the same header block as message_provider_id, so no second parse.
    provider_id = messages[0].provider_id if messages else message_provider_id(raw)
    return _Parsed(provider_id[:255], tuple(messages))


def _parse_chunk(channel: Channel, raws: list[bytes]) -> list[_Parsed]:
    return [_parse_one(channel, raw) for raw in raws]


class _Inline:
    """No process pool: parse in this process, when asked."""

    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        return False


def _parser(workers: int):
    if workers <= 1:
        return _Inline()
    # Forked, so each worker has the settings and the adapter registry; workers never touch the database.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))


def _parse_submit(executor: Executor | None, workers: int, channel: Channel, chunk: list[tuple[str, bytes]]):
    """``(chunk, its parsed messages)``: a list when parsed here, a future of one when handed to ``executor``."""
    if not chunk:
        return None
    raws = [bytes(raw) for _, raw in chunk]
    if executor is None:
        return chunk, _parse_chunk(channel, raws)
    size = -(-len(raws) // workers)
    futures = [
        executor.submit(_parse_chunk, channel, raws[start : start + size]) for start in range(0, len(raws), size)
    ]
    joined: Future = Future()

    def gather(_done) -> None:
        if all(future.done() for future in futures) and not joined.done():
            try:
                joined.set_result([parsed for future in futures for parsed in future.result()])
            except Exception as exc:
                joined.set_exception(exc)

    for future in futures:
        future.add_done_callback(gather)
    return chunk, joined


def _batch_import(channel: Channel, chunk: list[tuple[str, bytes]], parsed: list[_Parsed]):
    """Import one batch inside the caller's transaction; returns ``(label, outcome)`` in order."""
    provider_ids = {item.provider_id for item in parsed}
    for _ in range(STORE_ATTEMPTS):
        stored = _events_stored(channel, provider_ids)
        fresh, seen = [], set()
        for index, item in enumerate(parsed):
            if item.provider_id in stored or item.provider_id in seen or item.is_unexpected:
                continue
            seen.add(item.provider_id)
            fresh.append(index)
        events = _events_store(channel, [(chunk[index][1], parsed[index].provider_id) for index in fresh])
        if events is not None:
            break
        # Another import stored one of them meanwhile (and has committed it: the insert waited for that). Looked
        # up again, it is a duplicate like any already stored; the rest of the batch still goes in together.
    else:
        # Still clashing: this batch goes the one-by-one way.
        return [(label, _email_import_in_savepoint(channel, raw)) for label, raw in chunk]
    event_of = dict(zip(fresh, events, strict=True))
    messages = [item for index in fresh for item in parsed[index].messages]
    # Optimistically first: one savepoint for the whole batch instead of one per message (two statements each). If
    # any message raises, that savepoint undoes the batch's messages and they are taken again, each in its own.
    try:
        with transaction.atomic(), ingest_batch(channel=channel, messages=messages) as batch:
            outcomes, statuses = _batch_ingest(channel, chunk, parsed, event_of, batch, is_careful=False)
    except _TakeCarefully:
        with ingest_batch(channel=channel, messages=messages) as batch:
            outcomes, statuses = _batch_ingest(channel, chunk, parsed, event_of, batch, is_careful=True)
    _events_mark(statuses)
    return outcomes


class _TakeCarefully(Exception):
    """A message of a batch taken without savepoints of its own raised: the batch is taken again, with them."""


def _batch_ingest(channel, chunk, parsed, event_of, batch: IngestBatch, *, is_careful: bool):
    outcomes, statuses = [], defaultdict(list)
    batch_provider_ids = {event.provider_id for event in event_of.values()}
    for index, (label, raw) in enumerate(chunk):
        event = event_of.get(index)
        if event is None:
            if parsed[index].provider_id in batch_provider_ids:
                # A second copy of a message of this batch: its first copy's outcome is stored first, so this one
                # finds it as a single import would.
                _events_mark(statuses)
                statuses.clear()
            with batch.suspended():
                outcomes.append((label, _email_import_in_savepoint(channel, raw)))
            continue
        if is_careful:
            outcome, status, reason = _event_import(event, parsed[index], batch)
        else:
            try:
                outcome, status, reason = _event_import_fast(event, parsed[index])
            except Exception as exc:
                raise _TakeCarefully from exc
        statuses[(status, reason)].append(event.pk)
        outcomes.append((label, outcome))
    return outcomes, statuses


def _events_stored(channel: Channel, provider_ids: set[str]) -> set[str]:
    """Of ``provider_ids``, those already stored as raw messages of ``channel``."""
    return set(
        InboundEvent.objects.filter(channel=channel, provider_id__in=provider_ids).values_list("provider_id", flat=True)
    )


def _events_store(channel: Channel, items: list[tuple[bytes, str]]) -> list[InboundEvent] | None:
    """The raw messages stored in one insert (counted as one processing attempt, as the worker counts it), or None
    when one of them was stored meanwhile."""
    if not items:
        return []
    rows = [
        InboundEvent(channel=channel, provider_id=provider_id, raw=bytes(raw), content_type=CONTENT_TYPE, attempts=1)
        for raw, provider_id in items
    ]
    try:
        with transaction.atomic(), _binary_parameters():
            return InboundEvent.objects.bulk_create(rows)
    except IntegrityError:
        return None


@contextmanager
def _binary_parameters() -> Iterator[None]:
    """On PostgreSQL (psycopg 3), the statements inside go with their parameters bound by the server: the raw
    messages travel as binary. Django binds on the client by default, which writes each one into the SQL text as
    hex, twice its size, built in Python and parsed back by the server: most of the cost of storing them."""
    if connection.vendor != "postgresql" or ServerBindingCursor is None:
        yield
        return
    connection.ensure_connection()
    raw_connection = connection.connection
    factory = raw_connection.cursor_factory
    raw_connection.cursor_factory = ServerBindingCursor
    try:
        yield
    finally:
        raw_connection.cursor_factory = factory


def _event_import(event: InboundEvent, parsed: _Parsed, batch: IngestBatch) -> tuple[ImportOutcome, str, str]:
    """Ingest one stored event's messages in a savepoint, as inbound_event_process does: bad input is quarantined,
    an unexpected error marks the event failed (retryable) and touches nothing else. Returns the outcome and the
    event's new status and reason."""
    if parsed.error:
        logger.warning("channels_app.inbound_quarantined", extra={"event_id": event.pk})
        return ImportOutcome(QUARANTINED, event.pk, parsed.error), QUARANTINED, parsed.error
    # What earlier messages left pending is written before this one's savepoint, which may undo only its own.
    pending_flush()
    try:
        try:
            with transaction.atomic():
                results, notes = inbound_messages_dispatch(event=event, messages=list(parsed.messages), publish=False)
        except IntegrityError:
            # Something the batch read in advance was stored meanwhile: once more, checking as a single import does.
            batch.forget()
            with transaction.atomic():
                results, notes = inbound_messages_dispatch(event=event, messages=list(parsed.messages), publish=False)
    except _QUARANTINE_ERRORS as exc:
        batch.forget()
        logger.warning("channels_app.inbound_quarantined", extra={"event_id": event.pk})
        return ImportOutcome(QUARANTINED, event.pk, str(exc)), QUARANTINED, str(exc)
    except Exception as exc:
        batch.forget()
        logger.exception("channels_app.inbound_failed", extra={"event_id": event.pk, "attempt": event.attempts})
        reason = f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
        return ImportOutcome(FAILED, event.pk, reason), FAILED, reason
    return _processed(event, results, notes)


def _event_import_fast(event: InboundEvent, parsed: _Parsed) -> tuple[ImportOutcome, str, str]:
    """``_event_import`` without a savepoint: whatever the messages raise goes to the caller, whose savepoint
    undoes the whole batch."""
    if parsed.error:
        logger.warning("channels_app.inbound_quarantined", extra={"event_id": event.pk})
        return ImportOutcome(QUARANTINED, event.pk, parsed.error), QUARANTINED, parsed.error
    results, notes = inbound_messages_dispatch(event=event, messages=list(parsed.messages), publish=False)
    return _processed(event, results, notes)


def _processed(event: InboundEvent, results, notes: list[str]) -> tuple[ImportOutcome, str, str]:
    logger.info("channels_app.inbound_processed", extra={"event_id": event.pk, "messages": len(results)})
    reason = "; ".join(notes)[:MAX_REASON_CHARS]
    if not results:
        # Processed into no message: a bounce, recorded on the delivery it returns (the reason says which).
        return ImportOutcome("bounce", event.pk, reason), PROCESSED, reason
    result = results[0]
    if not result.is_new_message:
        return ImportOutcome("duplicate", event.pk), PROCESSED, reason
    return ImportOutcome("ingested" if result.is_new_ticket else "threaded", event.pk), PROCESSED, reason


def _events_mark(statuses: dict[tuple[str, str], list[int]]) -> None:
    """One update per status and reason (most of a batch shares one)."""
    now = timezone.now()
    for (status, reason), pks in statuses.items():
        changes = {"status": status, "reason": reason, "updated_at": now}
        if status == PROCESSED:
            changes["processed_at"] = now
        InboundEvent.objects.filter(pk__in=pks).update(**changes)


def _email_import_in_savepoint(channel: Channel, raw: bytes) -> ImportOutcome:
    with transaction.atomic():
        return _email_import(channel=channel, raw=raw)


def _email_import(*, channel: Channel, raw: bytes) -> ImportOutcome:
    raw = bytes(raw)
    event, created = inbound_event_receive(
        channel=channel, provider_id=message_provider_id(raw), raw=raw, content_type=CONTENT_TYPE, enqueue=False
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
