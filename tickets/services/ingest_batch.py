"""What ``message_ingest`` may look up once for a whole batch of messages instead of once per message.

A bulk import (the email provider's ``email_import_many``) ingests many messages in one transaction, one
after another, through ``message_ingest`` as always; inside ``ingest_batch`` some lookups are made once for the
batch: which of its provider ids are already stored on the channel, who its senders are (existing identities), the
addresses of our own email channels, and whether any ``MessageAlias`` exists; and the participants its messages
record, and the touches of its senders who were customers already (locked when the batch starts), are written
together, before anything reads participants; the new tickets it opened are routed together after it commits (one
``tickets.route_tickets`` task instead of one per ticket). The rules are unchanged: whatever the batch did not read
in advance, or has already used once, is looked up as for a single message.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Case, CharField, F, Q, Value, When
from django.utils import timezone

from channels_app.models import Channel
from channels_app.selectors import own_email_addresses
from channels_app.types import InboundMessage
from customers.identities import normalise_identity
from customers.models import Customer
from customers.services import customer_identities_preload
from customers.types import IdentityInput
from tickets.models import Message, MessageAlias, TicketParticipant
from tickets.tasks import route_tickets


@dataclass
class IngestBatch:
    channel_id: int
    # Provider ids of the batch's messages that no message on the channel had when the batch started. Each is
    # taken once: whatever became of that message afterwards, the next one with the id is checked as usual.
    new_provider_ids: set[str] = field(default_factory=set)
    our_email_addresses: list[str] | None = None
    has_message_aliases: bool | None = None
    # Participants recorded by the batch's messages, written in one insert before anything reads participants
    # (``participants_flush``) and when the block ends.
    pending_participants: list[TicketParticipant] = field(default_factory=list)
    # Tickets the batch's messages opened: routed together, one task, after the batch commits. One undone with its
    # message stays listed; routing skips tickets that do not exist.
    new_ticket_ids: list[int] = field(default_factory=list)
    # Existing customers among the batch's senders, locked (in id order) when the batch starts: the lock a message's
    # touch would take, so their touches (latest visit, channel, a missing name) are written together
    # (``pending_flush``) instead of one update per message.
    locked_customer_ids: set[int] = field(default_factory=set)
    channel: Channel | None = None
    # customer id -> (when the customer wrote, the name to give them if they have none)
    pending_touches: dict[int, tuple[datetime, str]] = field(default_factory=dict)

    def is_new_provider_id(self, *, channel: Channel, provider_id: str) -> bool:
        if channel.pk != self.channel_id or provider_id not in self.new_provider_ids:
            return False
        self.new_provider_ids.discard(provider_id)
        return True

    def customer_touch_later(self, *, customer: Customer, channel: Channel, name: str) -> bool:
        """Record that ``customer`` wrote now on the batch's channel (``message_ingest``'s touch), to be written with
        the others; False when the batch did not lock them in advance (the caller touches them itself). The
        in-memory customer is left as the immediate update would leave it."""
        if channel.pk != self.channel_id or customer.pk not in self.locked_customer_ids:
            return False
        now = timezone.now()
        pending_name = self.pending_touches.get(customer.pk, (now, ""))[1]
        if name and not customer.name:
            pending_name = name[:200]
            customer.name = pending_name
        self.pending_touches[customer.pk] = (now, pending_name)
        customer.last_channel, customer.last_seen_at, customer.updated_at = self.channel, now, now
        return True

    def customer_touches_write(self, *, customer_id: int) -> None:
        """Before a message writes the customer row itself: their pending touch first, so the latest write wins."""
        if customer_id in self.pending_touches:
            pending_flush()

    def forget(self) -> None:
        """After a rollback in the batch: nothing read in advance is trusted any more, and the participants and
        customer touches of what was undone are not written (the caller flushed the earlier ones before its
        savepoint)."""
        self.new_provider_ids.clear()
        self.pending_participants.clear()
        self.pending_touches.clear()

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """A message taken the single-import way inside the batch: with its own savepoints and look-ups."""
        pending_flush()
        token = _current.set(None)
        try:
            yield
        finally:
            _current.reset(token)


_current: ContextVar[IngestBatch | None] = ContextVar("tickets_ingest_batch", default=None)


def ingest_batch_current() -> IngestBatch | None:
    return _current.get()


@contextmanager
def ingest_batch(*, channel: Channel, messages: Iterable[InboundMessage]) -> Iterator[IngestBatch]:
    """Within the block, ``message_ingest`` of ``messages`` on ``channel`` reads the batch's lookups instead of
    querying each time. The caller holds one transaction for the block and calls ``message_ingest`` inside a
    savepoint that undoes whatever a failed call did (``message_ingest`` takes none of its own): one per message,
    or one for the whole block, which the caller then takes again in a new block, a savepoint per message."""
    messages = list(messages)
    provider_ids = {message.provider_id for message in messages if message.provider_id}
    batch = IngestBatch(
        channel_id=channel.pk, channel=channel, new_provider_ids=provider_ids - _stored(channel, provider_ids)
    )
    senders = []
    region = (channel.settings or {}).get("phone_region")
    for message in messages:
        try:
            value = normalise_identity(message.sender.kind, message.sender.value, phone_region=region)
        except ValueError:
            continue
        senders.append(IdentityInput(kind=message.sender.kind, value=value))
    token = _current.set(batch)
    try:
        with customer_identities_preload(identities=senders):
            batch.locked_customer_ids = _customers_lock(senders)
            yield batch
            pending_flush()
        if batch.new_ticket_ids:
            ticket_ids = list(batch.new_ticket_ids)
            # Registered inside the caller's savepoint: dropped with it if the block is undone.
            transaction.on_commit(lambda: route_tickets.delay(ticket_ids), robust=True)
    finally:
        _current.reset(token)


def pending_flush() -> None:
    """Write what the batch's messages left pending: participants and customer touches."""
    participants_flush()
    batch = _current.get()
    if batch is not None and batch.pending_touches:
        touches = dict(batch.pending_touches)
        batch.pending_touches.clear()
        _touches_write(batch.channel, touches)


def _touches_write(channel: Channel, touches: dict[int, tuple[datetime, str]]) -> None:
    """One update for every touched customer. Their latest visit is the time of the latest message of the lot (the
    messages of one batch arrive within a moment; a time per customer would cost a CASE branch each, more than the
    update it saves). A name only where they still have none (as ``message_ingest``'s own touch: a name someone
    gave them since is kept)."""
    now = max(when for when, _ in touches.values())
    changes = {"last_channel": channel, "last_seen_at": now, "updated_at": now}
    named = {pk: name for pk, (_, name) in touches.items() if name}
    if named:
        changes["name"] = Case(
            *(When(pk=pk, name="", then=Value(name)) for pk, name in named.items()),
            default=F("name"),
            output_field=CharField(),
        )
    Customer.objects.filter(pk__in=touches).update(**changes)


def _customers_lock(senders: list[IdentityInput]) -> set[int]:
    """Lock the existing customers that own the batch's sender identities, in id order (two batches cannot
    deadlock on them); their ids."""
    if not senders:
        return set()
    by_kind: dict[str, set[str]] = {}
    for sender in senders:
        by_kind.setdefault(sender.kind, set()).add(sender.value)
    query = Q()
    for kind, values in by_kind.items():
        query |= Q(identities__kind=kind, identities__value__in=values)
    return set(
        Customer.objects.select_for_update(of=("self",)).filter(query).order_by("pk").values_list("pk", flat=True)
    )


def participants_flush() -> None:
    """Write the batch's pending participants (an address already recorded keeps its first role: in one insert
    the earlier row wins too)."""
    batch = _current.get()
    if batch is not None and batch.pending_participants:
        TicketParticipant.objects.bulk_create(batch.pending_participants, ignore_conflicts=True)
        batch.pending_participants.clear()


def _stored(channel: Channel, provider_ids: set[str]) -> set[str]:
    """Of ``provider_ids``, those a message on ``channel`` already has."""
    return set(
        Message.objects.filter(channel=channel, provider_id__in=provider_ids).values_list("provider_id", flat=True)
    )


def our_email_addresses() -> list[str]:
    """Every email channel's address (once per batch inside ``ingest_batch``)."""
    batch = _current.get()
    if batch is not None and batch.our_email_addresses is not None:
        return batch.our_email_addresses
    addresses = own_email_addresses()
    if batch is not None:
        batch.our_email_addresses = addresses
    return addresses


def message_aliases_may_exist() -> bool:
    """False when no ``MessageAlias`` exists, asked once per batch inside ``ingest_batch`` (always True outside):
    aliases are recorded when our mail goes out, long before a reply to it can be imported, so one that appears
    while a batch runs cannot be what a message of that batch quotes."""
    batch = _current.get()
    if batch is None:
        return True
    if batch.has_message_aliases is None:
        batch.has_message_aliases = MessageAlias.objects.exists()
    return batch.has_message_aliases
