"""What ``message_ingest`` may look up once for a whole batch of messages instead of once per message.

A bulk import (``channels_app.email.importing.email_import_many``) ingests many messages in one transaction, one
after another, through ``message_ingest`` as always; inside ``ingest_batch`` some lookups are made once for the
batch: which of its provider ids are already stored on the channel, who its senders are (existing identities), the
addresses of our own email channels, and whether any ``MessageAlias`` exists; and the participants its messages
record are written together, before anything reads participants. The rules are unchanged: whatever the batch did
not read in advance, or has already used once, is looked up as for a single message.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from channels_app.models import Channel
from channels_app.types import InboundMessage
from customers.identities import normalise_identity
from customers.services import customer_identities_preload
from customers.types import IdentityInput
from tickets.models import Message, MessageAlias, TicketParticipant


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

    def is_new_provider_id(self, *, channel: Channel, provider_id: str) -> bool:
        if channel.pk != self.channel_id or provider_id not in self.new_provider_ids:
            return False
        self.new_provider_ids.discard(provider_id)
        return True

    def forget(self) -> None:
        """After a rollback in the batch: nothing read in advance is trusted any more, and the participants of
        what was undone are not written (the caller flushed the earlier ones before its savepoint)."""
        self.new_provider_ids.clear()
        self.pending_participants.clear()

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """A message taken the single-import way inside the batch: with its own savepoints and look-ups."""
        participants_flush()
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
    batch = IngestBatch(channel_id=channel.pk, new_provider_ids=provider_ids - _stored(channel, provider_ids))
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
            yield batch
            participants_flush()
    finally:
        _current.reset(token)


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
    addresses = list(Channel.objects.filter(kind=Channel.Kind.EMAIL).values_list("address", flat=True))
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
