"""The one way a customer's message enters the desk, whichever channel brought it.

``message_ingest`` resolves the customer from the sender's identity, decides which ticket the message
continues (``tickets.services.threading`` has the rules and who may use them), stores it with its timeline events
and, for email, the ticket's participants. A new ticket is opened with the team routing's first step gives it
(``tickets.services.routing``), so its first message is pushed to that team's agents only; the rest of routing is
enqueued after commit. It is idempotent on the channel's provider id.

The message's ``customer`` is always its actual sender, also when it continues another customer's ticket (a
colleague on Cc answering): the ticket shows every message, and each person's timeline shows what they wrote.

Automatic messages (out-of-office replies and other ``is_automatic`` mail) are recorded on the ticket they thread
to, whatever its status, but change nothing: no reopening, no follow-up ticket, no pending -> open, no
``last_customer_message_at``, no routing. One that threads to nothing starts a ticket like any other mail.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from channels_app.adapters.registry import capabilities_for
from channels_app.models import Channel
from channels_app.types import InboundIdentity, InboundMessage
from customers.identities import normalise_identity
from customers.models import Customer
from customers.services import customer_identity_add, customer_resolve, customer_touch_by_identity
from customers.types import IdentityInput
from helpdesk.errors import Conflict
from realtime.publish import message_created_publish
from tickets.errors import IngestRejected
from tickets.html import html_to_text, sanitise_html
from tickets.models import Message, Ticket
from tickets.services.attachments import attachments_store
from tickets.services.ingest_batch import ingest_batch_current
from tickets.services.inline_images import message_inline_images_link
from tickets.services.participants import participants_record
from tickets.services.routing import ticket_initial_routing, ticket_initial_routing_event
from tickets.services.threading import ThreadMatch, thread_find
from tickets.tasks import route_ticket
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

logger = logging.getLogger(__name__)

SUBJECT_FROM_TEXT_CHARS = 80


@dataclass(frozen=True)
class IngestResult:
    message: Message
    ticket: Ticket
    is_new_message: bool
    is_new_ticket: bool


def message_ingest(
    *, channel: Channel, inbound: InboundMessage, publish: bool = True, is_clash_raised: bool = False
) -> IngestResult:
    """Store ``inbound`` on the right ticket of the right customer, once.

    A new message is pushed to the agents who may see its ticket (and the chat visitors whose conversation it is)
    after commit, before the new ticket's routing task is enqueued; ``publish=False`` is for a bulk import, which
    tells the agents once per batch instead.

    Locks the customer row for the rest of the transaction, so two messages of one customer arriving at once
    cannot open two tickets. Raises ``IngestRejected`` (quarantine, do not retry) for messages that cannot be
    taken in as they are; whatever it raises, it leaves nothing behind.

    ``is_clash_raised`` is for a caller inside a transaction of its own that it rolls back whole when this raises
    (``inbound_event_process``): no savepoint is taken, and a message whose provider id is stored already raises
    ``IntegrityError`` (or ``IngestRejected``) instead of being recognised as that message. The caller then takes
    the event again without it, which recognises the duplicate. Two statements fewer for every message, which is
    almost never a duplicate (a redelivered event is one already, before any message is parsed).
    """
    if is_clash_raised:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("is_clash_raised needs the caller's transaction, rolled back whole if this raises.")
        return _message_ingest(channel=channel, inbound=inbound, publish=publish, is_clash_raised=True)
    if ingest_batch_current() is not None:
        # Inside a batch import the caller already holds a savepoint around each message (``ingest_batch``'s
        # contract): a second one here would cost two statements and undo nothing more.
        with transaction.atomic(savepoint=False):
            return _message_ingest(channel=channel, inbound=inbound, publish=publish)
    try:
        with transaction.atomic():
            return _message_ingest(channel=channel, inbound=inbound, publish=publish)
    except (IntegrityError, IngestRejected):
        # One message: the unique index on the channel's provider id finds a duplicate when the insert clashes,
        # instead of a query before every message. This savepoint has undone whatever the duplicate started (a
        # customer, a ticket, a reopening, a touch), so a redelivered message changes nothing. A rejection of a
        # message already stored (its ticket changed hands since) is a duplicate too, as it was when checked first.
        duplicate = _existing(channel, inbound.provider_id)
        if duplicate is None:
            raise
        return IngestResult(duplicate, duplicate.ticket, is_new_message=False, is_new_ticket=False)


def _message_ingest(
    *, channel: Channel, inbound: InboundMessage, publish: bool, is_clash_raised: bool = False
) -> IngestResult:
    sender = _identity_input(inbound.sender, channel)
    is_automatic = bool(inbound.metadata.get("is_automatic"))
    batch = ingest_batch_current()
    # Whether the insert below decides about duplicates: outside a batch, a clash undoes this message's savepoint
    # (``message_ingest``); a batch import read its provider ids at once, under the same transaction, and retries
    # the message the usual way if the insert finds the id taken after all. Otherwise (a batch's id that may be
    # known) the id is looked up first, under the customer's lock.
    is_insert_decisive = batch is None or batch.is_new_provider_id(channel=channel, provider_id=inbound.provider_id)
    # A message that is not automatic always counts as the customer's latest visit. A known sender's customer is
    # found, touched and locked in one statement (a batch import touches its customers together instead).
    touched = None
    if batch is None and not is_automatic:
        touched = customer_touch_by_identity(identity=sender, channel=channel, name=inbound.sender_name)
    if touched is not None:
        customer, identity_id = touched
        is_customer_touched = True
    else:
        # An unknown sender (a new customer is created as seen now, unless automatic), a merged customer's, an
        # automatic message or a batch import's.
        customer, identity, is_new_customer = customer_resolve(
            identity=sender,
            name=inbound.sender_name,
            seen_on=None if is_automatic else channel,
            is_clash_raised=is_clash_raised,
        )
        identity_id = identity.pk
        if is_new_customer:
            # Created in this transaction, so invisible to everyone else until it commits: no lock needed.
            is_customer_touched = not is_automatic
        elif is_insert_decisive and not is_automatic:
            # Not automatic, so this message counts as the customer's latest visit (undone with it, should it turn
            # out a duplicate): one update records it and takes the row lock select_for_update would. A batch import
            # that locked the customer already writes it with its other customers' (``ingest_batch``).
            if batch is None or not batch.customer_touch_later(
                customer=customer, channel=channel, name=inbound.sender_name
            ):
                while not _customer_touch(customer=customer, channel=channel, name=inbound.sender_name):
                    customer = _customer_merged_into(customer)
            is_customer_touched = True
        else:
            if batch is not None:
                batch.customer_touches_write(customer_id=customer.pk)
            customer = Customer.objects.select_for_update().get(pk=customer.pk)
            while customer.merged_into_id is not None:
                customer = _customer_merged_into(customer)
            is_customer_touched = False
    if not is_insert_decisive:
        # Checked under the customer's lock, so a worker that stored the same message meanwhile is seen here.
        duplicate = _existing(channel, inbound.provider_id)
        if duplicate is not None:
            return IngestResult(duplicate, duplicate.ticket, is_new_message=False, is_new_ticket=False)

    skipped_identities = _attach_extra_identities(customer, inbound.extra_identities, channel)
    if inbound.sender_name and not customer.name:
        customer.name = inbound.sender_name[:200]

    text = inbound.text if inbound.text.strip() else html_to_text(inbound.html) or inbound.text
    sender_email = sender.value if sender.kind == "email" else ""
    now = timezone.now()
    ticket, is_new_ticket, is_ticket_touched, notes = _ticket_for(
        channel=channel, customer=customer, sender_email=sender_email, inbound=inbound, text=text, now=now
    )
    metadata = {**inbound.metadata, **notes}
    if skipped_identities:
        metadata["identities_not_attached"] = skipped_identities
    message = Message(
        ticket=ticket,
        customer=customer,
        channel=channel,
        direction=Message.Direction.INBOUND,
        identity_id=identity_id,
        subject=inbound.subject[:500],
        text=text,
        html=sanitise_html(inbound.html),
        provider_id=inbound.provider_id,
        metadata=metadata,
        sent_at=inbound.sent_at,
    )
    if is_insert_decisive:
        # No savepoint: a clash raises IntegrityError out of this function, whose savepoint takes the ticket too.
        message.save(force_insert=True)
    else:
        try:
            with transaction.atomic():
                message.save(force_insert=True)
        except IntegrityError:
            duplicate = _existing(channel, inbound.provider_id)
            if duplicate is None:
                raise
            return IngestResult(duplicate, duplicate.ticket, is_new_message=False, is_new_ticket=False)
    attachments = attachments_store(message=message, attachments=inbound.attachments)
    # After the attachments exist: cid: images in the (already sanitised) HTML point at their download URLs.
    message_inline_images_link(message=message, attachments=attachments)

    if capabilities_for(channel).copies and sender_email and not is_automatic:
        participants_record(ticket=ticket, message=message, sender_email=sender_email, metadata=metadata)
    if is_automatic and not is_new_ticket:
        customer.save(update_fields=["name", "updated_at"])
    else:
        if not is_new_ticket and not is_ticket_touched:
            # A new ticket was opened as touched (``_ticket_open``), a continued one may have been found so.
            _ticket_touch(ticket=ticket, now=now)
        if not is_customer_touched:
            customer.last_channel = channel
            customer.last_seen_at = now
            customer.save(update_fields=["last_channel", "last_seen_at", "name", "updated_at"])

    logger.info(
        "tickets.message_ingested",
        extra={
            "message_id": message.pk,
            "ticket_id": ticket.pk,
            "channel_id": channel.pk,
            "new_ticket": is_new_ticket,
        },
    )
    if publish:
        # Before routing's on-commit hook, which sends a task to the broker: hooks run in order, and the agents
        # and the visitor should not wait for it.
        _attachments_known(message, attachments)
        message_created_publish(message=message)
    if is_new_ticket:
        if batch is not None:
            # A batch import routes its new tickets together once it commits (``ingest_batch``).
            batch.new_ticket_ids.append(ticket.pk)
        else:
            ticket_id = ticket.pk
            transaction.on_commit(lambda: route_ticket.delay(ticket_id), robust=True)
    return IngestResult(message, ticket, is_new_message=True, is_new_ticket=is_new_ticket)


def _attachments_known(message: Message, attachments: list) -> None:
    """The message's attachments, just stored, kept on it as if prefetched (as Django's prefetch does): its
    publication and the caller's answer read them without a query."""
    queryset = message.attachments.get_queryset()
    queryset._result_cache = sorted(attachments, key=lambda attachment: attachment.pk)
    queryset._prefetch_done = True
    message._prefetched_objects_cache = {**getattr(message, "_prefetched_objects_cache", {}), "attachments": queryset}


def _customer_touch(*, customer: Customer, channel: Channel, name: str) -> bool:
    """The customer wrote now on ``channel`` (and is called ``name`` if they had no name yet), in one update that
    also locks the row for the rest of the transaction. False when the customer has been merged into another."""
    now = timezone.now()
    changes = {"last_channel": channel, "last_seen_at": now, "updated_at": now}
    if name and not customer.name:
        # Read in this transaction; the condition keeps a name someone gave them since.
        changes["name"] = Case(When(name="", then=Value(name[:200])), default=F("name"))
    if not Customer.objects.filter(pk=customer.pk, merged_into__isnull=True).update(**changes):
        return False
    customer.last_channel, customer.last_seen_at, customer.updated_at = channel, now, now
    if name and not customer.name:
        customer.name = name[:200]
    return True


def _customer_merged_into(customer: Customer) -> Customer:
    """The customer ``customer`` was merged into, locked. A merge that committed between reading the sender's
    identity and locking its customer leaves the message pointing at the merged one; its identities, tickets and
    timeline are on the target now, and so must the message be."""
    merged_into_id = Customer.objects.filter(pk=customer.pk).values_list("merged_into_id", flat=True).first()
    if merged_into_id is None:
        raise Customer.DoesNotExist(f"customer {customer.pk} is gone")
    return Customer.objects.select_for_update().get(pk=merged_into_id)


def _existing(channel: Channel, provider_id: str) -> Message | None:
    return Message.objects.select_related("ticket").filter(channel=channel, provider_id=provider_id).first()


def _identity_input(identity: InboundIdentity, channel: Channel) -> IdentityInput:
    region = (channel.settings or {}).get("phone_region")
    try:
        value = normalise_identity(identity.kind, identity.value, phone_region=region)
    except ValueError as exc:
        raise IngestRejected(f"sender {identity.kind} is not usable: {exc}") from exc
    return IdentityInput(kind=identity.kind, value=value, is_verified=identity.is_verified)


def _attach_extra_identities(customer: Customer, identities, channel: Channel) -> list[str]:
    """Attach further identities the channel vouches for. One owned by someone else is left alone (merging
    two people is an agent's decision); the kinds left out are returned to be noted on the message."""
    skipped = []
    for extra in identities:
        try:
            identity = _identity_input(extra, channel)
            with transaction.atomic():
                customer_identity_add(customer=customer, identity=identity)
        except (IngestRejected, Conflict):
            skipped.append(extra.kind)
    return skipped


def _ticket_for(
    *, channel: Channel, customer: Customer, sender_email: str, inbound: InboundMessage, text: str, now
) -> tuple[Ticket, bool, bool, dict]:
    """Which ticket this message continues, or a new one. Returns ``(ticket, is_new, is_touched, notes for the
    message)``; ``is_touched``: found and touched at once (``_open_ticket_touch``), so the caller does not.

    In order: the ticket the channel names (only if it is this customer's); the ticket the threading rules find
    (``thread_find``); the customer's most recently active open ticket, if the channel lets conversations follow
    the customer; otherwise a new ticket. Whichever way a ticket was found, a solved one is reopened within the
    reopen window and continued by a linked follow-up ticket after it (not for automatic messages).
    """
    referenced, notes = None, {}
    if inbound.ticket_id is not None:
        referenced = Ticket.objects.filter(pk=inbound.ticket_id).first()
        if referenced is None or referenced.customer_id != customer.pk:
            # Same answer for "no such ticket" and "someone else's ticket": no existence leak.
            raise IngestRejected(f"ticket {inbound.ticket_id} is not a ticket of this sender")
    else:
        search = thread_find(channel=channel, inbound=inbound, customer_id=customer.pk, sender_email=sender_email)
        notes = dict(search.notes)
        if search.match is not None:
            referenced = search.tickets.get(search.match.ticket_id) or Ticket.objects.get(pk=search.match.ticket_id)
            notes.update(_match_notes(search.match))

    if referenced is not None:
        referenced = _follow_merges(referenced)
        if referenced.is_active or inbound.metadata.get("is_automatic"):
            return referenced, False, False, notes
        if _reopenable(referenced):
            _ticket_reopen(referenced)
            return referenced, False, False, notes
        follow_up = _ticket_open(
            channel=channel, customer=customer, inbound=inbound, text=text, now=now, follow_up_of=referenced
        )
        return follow_up, True, False, notes

    if channel.continue_open_ticket:
        if not inbound.metadata.get("is_automatic"):
            touched = _open_ticket_touch(customer=customer, now=now)
            if touched is not None:
                return touched, False, True, notes
        current = (
            Ticket.objects.filter(customer=customer, status__in=Ticket.ACTIVE_STATUSES, merged_into__isnull=True)
            .order_by(F("last_message_at").desc(nulls_last=True), "-id")
            .first()
        )
        if current is not None:
            return current, False, False, notes
    return _ticket_open(channel=channel, customer=customer, inbound=inbound, text=text, now=now), True, False, notes


def _open_ticket_touch(*, customer: Customer, now) -> Ticket | None:
    """The customer's most recently active open ticket, touched as ``_ticket_touch`` would (the customer wrote: it
    waits on us), in the statement that finds it. None when the customer has no active ticket, or when it is
    pending or on hold: reopening it records an event, which ``_ticket_touch`` does after the usual lookup.

    One statement instead of two for a customer's every message on a conversation that goes on (a chat). The
    customer's row is locked already, so no other message of theirs picks a ticket meanwhile; an agent who solves
    the ticket at the same moment wins, and the message takes the usual way."""
    ops = transaction.get_connection().ops
    at = ops.adapt_datetimefield_value(now)
    rows = list(
        Ticket.objects.raw(
            _open_ticket_touch_sql(),
            [at, at, customer.pk, *Ticket.ACTIVE_STATUSES, Ticket.Status.NEW, Ticket.Status.OPEN],
        )
    )
    return rows[0] if rows else None


@cache
def _open_ticket_touch_sql() -> str:
    # Built from the model once per process, so it follows its table and columns. Plain SQL that PostgreSQL and
    # SQLite (3.35+, for RETURNING) both run; ``raw`` converts the returned row as the ORM would. The order is the
    # ORM lookup's below (latest message first, never-written tickets last, then the newest).
    quote = transaction.get_connection().ops.quote_name
    table = quote(Ticket._meta.db_table)
    columns = ", ".join(quote(field.column) for field in Ticket._meta.concrete_fields)
    active = ", ".join(["%s"] * len(Ticket.ACTIVE_STATUSES))
    return (
        f"UPDATE {table} SET {quote('last_message_at')} = %s, {quote('last_customer_message_at')} = %s, "  # noqa: S608
        f"{quote('version')} = {quote('version')} + 1 "
        f"WHERE {quote('id')} = (SELECT {quote('id')} FROM {table} WHERE {quote('customer_id')} = %s "
        f"AND {quote('status')} IN ({active}) AND {quote('merged_into_id')} IS NULL "
        f"ORDER BY {quote('last_message_at')} DESC NULLS LAST, {quote('id')} DESC LIMIT 1) "
        f"AND {quote('status')} IN (%s, %s) "
        f"RETURNING {columns}"
    )


def _match_notes(match: ThreadMatch) -> dict:
    notes = {"threaded_by": match.rule}
    if not match.sender_is_participant:
        # Threaded by a value only we gave out, from someone the ticket had not seen: worth an agent's glance.
        notes["sender_is_participant"] = False
    return notes


def _follow_merges(ticket: Ticket) -> Ticket:
    seen = set()
    while ticket.merged_into_id and ticket.pk not in seen:
        seen.add(ticket.pk)
        ticket = Ticket.objects.get(pk=ticket.merged_into_id)
    return ticket


def _reopenable(ticket: Ticket) -> bool:
    if ticket.status != Ticket.Status.SOLVED or ticket.solved_at is None:
        return False
    window = timedelta(days=settings.HELPDESK["REOPEN_WINDOW_DAYS"])
    return timezone.now() - ticket.solved_at <= window


def _ticket_reopen(ticket: Ticket) -> None:
    # Conditional: a participant's message may reopen the ticket while its customer's does too (different locks).
    reopened = Ticket.objects.filter(pk=ticket.pk, status=Ticket.Status.SOLVED).update(
        status=Ticket.Status.OPEN, solved_at=None, version=F("version") + 1
    )
    if reopened:
        event_record(
            customer_id=ticket.customer_id,
            ticket_id=ticket.pk,
            type=TimelineEvent.Type.REOPENED,
            actor=Actor.customer(),
            params={"from": ticket.status, "to": Ticket.Status.OPEN},
        )
    ticket.status = Ticket.Status.OPEN
    ticket.solved_at = None


def _ticket_open(
    *, channel: Channel, customer: Customer, inbound: InboundMessage, text: str, now, follow_up_of=None
) -> Ticket:
    """A new open ticket for the customer's message, already as ``_ticket_touch`` would leave it (the message is
    its latest and its first change), so opening it takes one statement, not two; and already routed to its first
    team (``ticket_initial_routing``), so the push of its first message goes to that team only. Its first timeline
    events (created, routed, the follow-up note on the earlier ticket) are one insert."""
    routing = ticket_initial_routing(channel=channel)
    ticket = Ticket.objects.create(
        customer=customer,
        channel=channel,
        team_id=routing.team_id,
        subject=_subject(inbound.subject, text, channel),
        follow_up_of=follow_up_of,
        last_message_at=now,
        last_customer_message_at=now,
        version=Ticket._meta.get_field("version").default + 1,
    )
    params = {"channel_id": channel.pk, "channel_kind": channel.kind}
    events = []
    if follow_up_of is not None:
        params["follow_up_of"] = follow_up_of.pk
        events.append(
            _customer_event(
                customer_id=customer.pk,
                ticket_id=follow_up_of.pk,
                type=TimelineEvent.Type.FOLLOW_UP_CREATED,
                params={"follow_up_ticket_id": ticket.pk},
            )
        )
    events.append(
        _customer_event(
            customer_id=customer.pk, ticket_id=ticket.pk, type=TimelineEvent.Type.TICKET_CREATED, params=params
        )
    )
    routed = ticket_initial_routing_event(ticket=ticket, routing=routing)
    if routed is not None:
        events.append(routed)
    TimelineEvent.objects.bulk_create(events)
    if routed is not None:
        logger.info("tickets.ticket_routed", extra={"ticket_id": ticket.pk, "team_id": routing.team_id})
    return ticket


def _customer_event(*, customer_id: int, ticket_id: int, type: str, params: dict) -> TimelineEvent:
    """The row ``event_record`` writes for the customer as actor, unsaved."""
    return TimelineEvent(
        customer_id=customer_id,
        ticket_id=ticket_id,
        type=type,
        actor_kind=Actor.customer().kind,
        params=params,
    )


def _subject(subject: str, text: str, channel: Channel) -> str:
    if subject.strip():
        return subject.strip()[:500]
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first_line:
        if len(first_line) > SUBJECT_FROM_TEXT_CHARS:
            return first_line[: SUBJECT_FROM_TEXT_CHARS - 1].rstrip() + "…"
        return first_line
    return f"Message via {channel.name}"


def _ticket_touch(*, ticket: Ticket, now) -> None:
    """A customer wrote: the ticket is active again and waits on us."""
    updates = {"last_message_at": now, "last_customer_message_at": now, "version": F("version") + 1}
    if ticket.status in (Ticket.Status.PENDING, Ticket.Status.ON_HOLD):
        updates["status"] = Ticket.Status.OPEN
        event_record(
            customer_id=ticket.customer_id,
            ticket_id=ticket.pk,
            type=TimelineEvent.Type.STATUS_CHANGED,
            actor=Actor.customer(),
            params={"from": ticket.status, "to": Ticket.Status.OPEN},
        )
        ticket.status = Ticket.Status.OPEN
    Ticket.objects.filter(pk=ticket.pk).update(**updates)
    ticket.last_message_at = now
    ticket.last_customer_message_at = now
