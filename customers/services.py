"""Writes for customers: recognising them from an identity, upserts from the company's systems, context events,
merging two customers and undoing that."""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING

from django.apps import apps
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from agents.selectors import user_is_admin
from customers.models import ContextEvent, Customer, CustomerIdentity, CustomerMerge, EmailSubscription
from customers.types import IdentityInput
from helpdesk.errors import Conflict, NotFound
from tickets.models import Ticket
from tickets.selectors.tickets import ticket_ids_visible
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

if TYPE_CHECKING:
    from channels_app.models import Channel

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ("name", "locale", "time_zone", "company", "plan", "lifetime_value")


class _Preloaded:
    """Identities read for a batch at once: the rows that existed, and the values that did not (each used once:
    after its first message creates it or fails to, the database is asked again)."""

    def __init__(self, found: dict[tuple[str, str], CustomerIdentity], absent: set[tuple[str, str]]):
        self.found = found
        self.absent = absent


_preloaded: ContextVar[_Preloaded | None] = ContextVar("customers_preloaded_identities", default=None)


@contextmanager
def customer_identities_preload(*, identities: Iterable[IdentityInput]) -> Iterator[None]:
    """Within the block, ``customer_resolve`` finds these identities (normalised) without a query each: one query
    reads them all. For a batch import inside one transaction, which calls ``customer_resolve`` inside a savepoint
    of its own: an identity read as absent is created without one, so if another process created it meanwhile,
    ``IntegrityError`` reaches the caller, to undo and try again (the identity is then read from the database)."""
    keys = {(identity.kind, identity.value) for identity in identities}
    found = {}
    if keys:
        by_kind: dict[str, set[str]] = {}
        for kind, value in keys:
            by_kind.setdefault(kind, set()).add(value)
        query = Q()
        for kind, values in by_kind.items():
            query |= Q(kind=kind, value__in=values)
        found = {
            (row.kind, row.value): row for row in CustomerIdentity.objects.select_related("customer").filter(query)
        }
    token = _preloaded.set(_Preloaded(found, keys - set(found)))
    try:
        yield
    finally:
        _preloaded.reset(token)


def customer_resolve(
    *, identity: IdentityInput, name: str = "", seen_on: "Channel | None" = None, is_clash_raised: bool = False
) -> tuple[Customer, CustomerIdentity, bool]:
    """The customer who owns ``identity``, creating customer and identity when nobody does.

    Safe under concurrency: the identity's unique constraint decides who creates it, and the loser reads the
    winner's row. Returns ``(customer, identity, created)``. ``seen_on``: the channel the customer is writing on
    now, recorded as their last channel and visit when the customer is created (the caller records it otherwise).
    ``is_clash_raised``: the caller rolls back its whole transaction and tries again if this raises
    ``IntegrityError`` (``message_ingest``'s flag of that name), so the loser of a race raises instead of reading
    the winner's row under a savepoint.
    """
    existing, is_known_absent = _identity_known(identity)
    if existing is not None:
        if identity.is_verified and not existing.is_verified:
            CustomerIdentity.objects.filter(pk=existing.pk).update(is_verified=True)
            existing.is_verified = True
        return _surviving(existing.customer), existing, False
    if is_known_absent or is_clash_raised:
        # A batch read it as absent in this transaction, or the caller retries: no savepoint. Should another
        # process have created it meanwhile, IntegrityError goes to the batch (whose savepoint undoes this and
        # which tries again) or to the caller (which rolls back and takes the event again).
        customer, created_identity = _customer_create(identity, name, seen_on)
        logger.info("customers.customer_created", extra={"customer_id": customer.pk})
        return customer, created_identity, True
    try:
        with transaction.atomic():
            customer, created_identity = _customer_create(identity, name, seen_on)
    except IntegrityError:
        existing = _identity_get(identity)
        if existing is None:
            raise
        return _surviving(existing.customer), existing, False
    logger.info("customers.customer_created", extra={"customer_id": customer.pk})
    return customer, created_identity, True


def customer_touch_by_identity(
    *, identity: IdentityInput, channel: "Channel", name: str = ""
) -> tuple[Customer, int] | None:
    """The customer who owns ``identity``, recorded as writing now on ``channel`` (and called ``name`` if they had
    no name yet) and so locked for the rest of the transaction: one statement for what ``customer_resolve`` and a
    touch take two for. Returns the customer and the identity's id, or None when nobody owns the identity yet or
    its customer has been merged (the caller then takes ``customer_resolve``'s way, which handles both).

    For a customer's every message on the hottest path (a chat visitor writing): the identity is read in the
    statement that updates its customer, and an identity that is verified now is marked so (rarely: a second
    statement)."""
    now = timezone.now()
    ops = transaction.get_connection().ops
    rows = list(
        Customer.objects.raw(
            _customer_touch_sql(),
            [
                channel.pk,
                ops.adapt_datetimefield_value(now),
                ops.adapt_datetimefield_value(now),
                name[:200],
                # The identity, looked up by its unique (kind, value) for the customer, its id and its verification
                *(identity.kind, identity.value) * 3,
            ],
        )
    )
    if not rows:
        return None
    customer = rows[0]
    identity_id, is_verified = customer.touched_identity_id, customer.touched_identity_is_verified
    del customer.touched_identity_id, customer.touched_identity_is_verified
    if identity.is_verified and not is_verified:
        CustomerIdentity.objects.filter(pk=identity_id).update(is_verified=True)
    return customer, identity_id


@cache
def _customer_touch_sql() -> str:
    # Built from the models once per process, so it follows their tables and columns. Plain SQL that PostgreSQL
    # and SQLite (3.35+, for RETURNING) both run; ``raw`` converts the returned row as the ORM would.
    quote = transaction.get_connection().ops.quote_name
    customer = quote(Customer._meta.db_table)
    identities = quote(CustomerIdentity._meta.db_table)
    columns = ", ".join(quote(field.column) for field in Customer._meta.concrete_fields)
    identity = f"FROM {identities} WHERE {quote('kind')} = %s AND {quote('value')} = %s"
    name = quote("name")
    return (
        f"UPDATE {customer} SET {quote('last_channel_id')} = %s, {quote('last_seen_at')} = %s, "  # noqa: S608
        f"{quote('updated_at')} = %s, {name} = CASE WHEN {name} = '' THEN %s ELSE {name} END "
        f"WHERE {quote('id')} = (SELECT {quote('customer_id')} {identity}) AND {quote('merged_into_id')} IS NULL "
        f"RETURNING {columns}, (SELECT {quote('id')} {identity}) AS touched_identity_id, "
        f"(SELECT {quote('is_verified')} {identity}) AS touched_identity_is_verified"
    )


def _surviving(customer: Customer) -> Customer:
    """The customer that ``customer`` was merged into, if it was (following re-pointed merges to the end).

    A merge moves identities to the target, so this matters only for an identity read before the merge committed
    (a batch's preloaded identities): the message must not land on a merged customer. Costs no query otherwise."""
    seen = set()
    while customer.merged_into_id is not None and customer.pk not in seen:
        seen.add(customer.pk)
        customer = Customer.objects.get(pk=customer.merged_into_id)
    return customer


def _customer_create(
    identity: IdentityInput, name: str, seen_on: "Channel | None"
) -> tuple[Customer, CustomerIdentity]:
    seen = {"last_channel": seen_on, "last_seen_at": timezone.now()} if seen_on is not None else {}
    customer = Customer.objects.create(name=name[:200], **seen)
    created_identity = CustomerIdentity.objects.create(
        customer=customer,
        kind=identity.kind,
        value=identity.value,
        is_verified=identity.is_verified,
        is_primary=True,
    )
    return customer, created_identity


def customer_identity_add(*, customer: Customer, identity: IdentityInput) -> CustomerIdentity:
    """Attach ``identity`` to ``customer``; Conflict if another customer already owns it."""
    existing = _identity_get(identity)
    if existing is not None:
        if existing.customer_id != customer.pk:
            raise Conflict(f"That {identity.kind} identity belongs to another customer.", code="identity_taken")
        return existing
    try:
        with transaction.atomic():
            return CustomerIdentity.objects.create(
                customer=customer, kind=identity.kind, value=identity.value, is_verified=identity.is_verified
            )
    except IntegrityError as exc:
        raise Conflict(f"That {identity.kind} identity belongs to another customer.", code="identity_taken") from exc


@transaction.atomic
def customer_upsert(
    *,
    identities: list[IdentityInput],
    profile: dict,
    attributes: dict | None = None,
) -> tuple[Customer, bool]:
    """Create or update the customer these identities name, as the company's systems describe them.

    Identities found on two different customers are a conflict (409): merging people is an agent's decision.
    ``profile`` holds only the fields to change; ``attributes`` are merged key by key, and a key set to None
    is removed.
    """
    if not identities:
        raise Conflict("At least one identity is needed to find or create a customer.", code="no_identity")
    found = CustomerIdentity.objects.select_related("customer").filter(_identities_q(identities))
    owners = {row.customer_id for row in found}
    if len(owners) > 1:
        raise Conflict("These identities belong to different customers; merge them first.", code="identities_conflict")
    created = not owners
    if created:
        customer = Customer.objects.create()
    else:
        customer = Customer.objects.select_for_update().get(pk=owners.pop())
    known = {(row.kind, row.value) for row in found}
    for identity in identities:
        if (identity.kind, identity.value) not in known:
            customer_identity_add(customer=customer, identity=identity)
    changed = []
    for field in PROFILE_FIELDS:
        if field in profile:
            value = profile[field]
            if field == "lifetime_value":
                value = None if value is None else Decimal(value)
            elif value is None:
                value = ""
            setattr(customer, field, value)
            changed.append(field)
    if attributes:
        merged = dict(customer.attributes or {})
        for key, value in attributes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        customer.attributes = merged
        changed.append("attributes")
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
    return customer, created


def context_event_record(
    *,
    customer: Customer,
    type: str,
    payload: dict,
    occurred_at: datetime,
    external_id: str = "",
    source: str = "",
) -> tuple[ContextEvent, bool]:
    """Record a context event once: the same ``(source, external_id)`` again returns the first one."""
    if not external_id:
        return (
            ContextEvent.objects.create(
                customer=customer, type=type, payload=payload, occurred_at=occurred_at, source=source
            ),
            True,
        )
    try:
        with transaction.atomic():
            event = ContextEvent.objects.create(
                customer=customer,
                type=type,
                payload=payload,
                occurred_at=occurred_at,
                external_id=external_id,
                source=source,
            )
        return event, True
    except IntegrityError:
        return ContextEvent.objects.get(customer=customer, source=source, external_id=external_id), False


def _identity_known(identity: IdentityInput) -> tuple[CustomerIdentity | None, bool]:
    """As ``_identity_get``, from a batch's preloaded identities when there are some; and whether the batch read
    it as absent (said once: after that, the database is asked)."""
    preloaded = _preloaded.get()
    if preloaded is not None:
        key = (identity.kind, identity.value)
        if key in preloaded.found:
            return preloaded.found[key], False
        if key in preloaded.absent:
            preloaded.absent.discard(key)
            return None, True
    return _identity_get(identity), False


def _identity_get(identity: IdentityInput) -> CustomerIdentity | None:
    return CustomerIdentity.objects.select_related("customer").filter(kind=identity.kind, value=identity.value).first()


def _identities_q(identities: list[IdentityInput]):
    query = Q()
    for identity in identities:
        query |= Q(kind=identity.kind, value=identity.value)
    return query


# What a merge moves, by the key it is recorded under in CustomerMerge.moved: every row that belongs to a customer.
# Named by app label, so the core does not import a channel app (chat) for one foreign key.
MERGE_MOVED_MODELS = (
    ("identities", "customers.CustomerIdentity"),
    ("tickets", "tickets.Ticket"),
    ("messages", "tickets.Message"),
    ("timeline_events", "timeline.TimelineEvent"),
    ("context_events", "customers.ContextEvent"),
    ("chat_visitors", "chat.ChatVisitor"),
)
MERGE_PROFILE_FIELDS = ("name", "company", "plan", "locale", "time_zone", "lifetime_value", "preferred_channel_id")
# Profile fields whose blank is None rather than "".
_NULLABLE_PROFILE_FIELDS = ("lifetime_value", "preferred_channel_id")


@transaction.atomic
def customer_merge(*, source: Customer, target: Customer, actor: Actor) -> CustomerMerge:
    """Merge ``source`` into ``target``: everything the source had moves to the target, and the source keeps its
    row with ``merged_into`` set, so old references still resolve (``customer_resolve`` follows it).

    Locks both customer rows in id order (two merges of the same pair in opposite directions cannot deadlock), then
    re-reads them. Refused (``Conflict``): a customer into itself, into a merged customer, or a merged customer
    again. Customers merged earlier into ``source`` are re-pointed to ``target`` (no chains); that is recorded too.
    An agent who may not see every ticket of both customers gets ``NotFound`` and nothing moves
    (``_merge_access_check``).
    The target's blank profile fields are filled from the source (the target's values win), attributes are merged
    key by key (the target's win). A context event whose ``(source, external_id)`` the target already has stays
    with the source (the unique constraint), listed in ``moved["context_events_kept"]``.
    """
    if source.pk == target.pk:
        raise Conflict("A customer cannot be merged into itself.", code="merge_into_self")
    locked = {
        row.pk: row for row in Customer.objects.select_for_update().filter(pk__in=[source.pk, target.pk]).order_by("pk")
    }
    if len(locked) != 2:
        raise NotFound("No such customer.")
    source, target = locked[source.pk], locked[target.pk]
    _merge_access_check(actor=actor, customer_ids=[source.pk, target.pk])
    if target.merged_into_id is not None:
        raise Conflict(
            f"{_label(target)} was itself merged into customer {target.merged_into_id}; merge into that one instead.",
            code="merge_into_merged",
        )
    if source.merged_into_id is not None:
        raise Conflict(
            f"{_label(source)} was already merged into customer {source.merged_into_id}.", code="already_merged"
        )

    moved: dict = {}
    conflicting = (
        ContextEvent.objects.filter(customer=source)
        .exclude(external_id="")
        .filter(
            Exists(
                ContextEvent.objects.filter(
                    customer=target, source=OuterRef("source"), external_id=OuterRef("external_id")
                )
            )
        )
    )
    kept_context_ids = sorted(conflicting.values_list("pk", flat=True))
    moved["context_events_kept"] = kept_context_ids
    moved["primary_identities"] = sorted(
        CustomerIdentity.objects.filter(customer=source, is_primary=True).values_list("pk", flat=True)
    )
    for key, label in MERGE_MOVED_MODELS:
        model = apps.get_model(label)
        rows = model.objects.filter(customer=source)
        if key == "context_events":
            rows = rows.exclude(pk__in=kept_context_ids)
        ids = sorted(rows.values_list("pk", flat=True))
        if ids:
            model.objects.filter(pk__in=ids).update(customer=target)
        moved[key] = ids
    if moved["primary_identities"]:
        # The target keeps its own primary identities; the source's become secondary (restored on undo).
        CustomerIdentity.objects.filter(pk__in=moved["primary_identities"]).update(is_primary=False)
    # Customers merged into the source earlier now point at the target, so that no merge chain forms.
    repointed = sorted(Customer.objects.filter(merged_into=source).values_list("pk", flat=True))
    if repointed:
        Customer.objects.filter(pk__in=repointed).update(merged_into=target)
    moved["repointed_customers"] = repointed
    moved["email_subscriptions"], moved["email_subscriptions_overridden"] = _email_subscriptions_merge(
        source=source, target=target
    )

    filled = {}
    for field in MERGE_PROFILE_FIELDS:
        value = getattr(source, field)
        if _is_blank(getattr(target, field)) and not _is_blank(value):
            setattr(target, field, value)
            filled[field] = _jsonable(value)
    moved["filled_fields"] = filled
    target_attributes = dict(target.attributes or {})
    added = {key: value for key, value in (source.attributes or {}).items() if key not in target_attributes}
    if added:
        target.attributes = {**target_attributes, **added}
    moved["attributes_added"] = added
    target.save(update_fields=[*filled, "attributes", "updated_at"])

    snapshot = {field: _jsonable(getattr(source, field)) for field in MERGE_PROFILE_FIELDS}
    snapshot["attributes"] = source.attributes or {}
    source.merged_into = target
    source.save(update_fields=["merged_into", "updated_at"])
    merge = CustomerMerge.objects.create(
        source=source, target=target, actor=actor.user, moved=moved, source_snapshot=snapshot
    )
    event_record(
        customer_id=target.pk,
        type=TimelineEvent.Type.CUSTOMER_MERGED,
        actor=actor,
        params={
            "merge_id": merge.pk,
            "source_id": source.pk,
            "source_name": source.name,
            "moved": {key: len(moved[key]) for key, _ in MERGE_MOVED_MODELS},
        },
    )
    logger.info(
        "customers.customer_merged", extra={"merge_id": merge.pk, "source_id": source.pk, "target_id": target.pk}
    )
    return merge


@transaction.atomic
def customer_merge_undo(*, merge: CustomerMerge, actor: Actor) -> CustomerMerge:
    """Undo ``merge``: exactly the rows it moved go back to the source (those that are still on the target; rows
    that arrived after the merge stay), the profile fields and attributes it filled in on the target are cleared
    again (unless changed since), the source gets its profile back and is no longer merged.

    Locks the merge row, then both customers in id order. Undoing an undone merge changes nothing and returns it
    (a retried click). Refused (``Conflict``) when the source has been merged elsewhere since (its target was merged
    on into another customer): undo that later merge first. ``NotFound`` for an agent who may not see every ticket
    of both customers, as for the merge.
    """
    merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        return merge
    locked = {
        row.pk: row
        for row in Customer.objects.select_for_update().filter(pk__in=[merge.source_id, merge.target_id]).order_by("pk")
    }
    source, target = locked[merge.source_id], locked[merge.target_id]
    _merge_access_check(actor=actor, customer_ids=[source.pk, target.pk])
    if source.merged_into_id != target.pk or target.merged_into_id is not None:
        raise Conflict(
            f"{_label(source)} has been merged into another customer since; undo that merge first.",
            code="merged_elsewhere_since",
        )
    moved = merge.moved or {}
    for key, label in MERGE_MOVED_MODELS:
        ids = moved.get(key) or []
        if ids:
            apps.get_model(label).objects.filter(pk__in=ids, customer=target).update(customer=source)
    if moved.get("primary_identities"):
        CustomerIdentity.objects.filter(pk__in=moved["primary_identities"], customer=source).update(is_primary=True)
    if moved.get("repointed_customers"):
        Customer.objects.filter(pk__in=moved["repointed_customers"], merged_into=target).update(merged_into=source)
    _email_subscriptions_unmerge(moved=moved, source=source, target=target)

    changed = []
    for field, value in (moved.get("filled_fields") or {}).items():
        # Only what the merge put there and nobody changed since.
        if _jsonable(getattr(target, field)) == value:
            setattr(target, field, None if field in _NULLABLE_PROFILE_FIELDS else "")
            changed.append(field)
    attributes = dict(target.attributes or {})
    for key, value in (moved.get("attributes_added") or {}).items():
        if key in attributes and attributes[key] == value:
            del attributes[key]
    if attributes != (target.attributes or {}):
        target.attributes = attributes
        changed.append("attributes")
    target.save(update_fields=[*changed, "updated_at"])

    snapshot = merge.source_snapshot or {}
    for field in MERGE_PROFILE_FIELDS:
        if field in snapshot:
            value = snapshot[field]
            if field == "lifetime_value":
                value = Decimal(value) if value is not None else None
            setattr(source, field, value)
    if "attributes" in snapshot:
        source.attributes = snapshot["attributes"]
    source.merged_into = None
    source.save(
        update_fields=[*(f for f in MERGE_PROFILE_FIELDS if f in snapshot), "attributes", "merged_into", "updated_at"]
    )

    merge.undone_at = timezone.now()
    merge.undone_by = actor.user
    merge.save(update_fields=["undone_at", "undone_by"])
    for customer, other in ((target, source), (source, target)):
        event_record(
            customer_id=customer.pk,
            type=TimelineEvent.Type.CUSTOMER_MERGE_UNDONE,
            actor=actor,
            params={"merge_id": merge.pk, "source_id": source.pk, "target_id": target.pk, "other_name": other.name},
        )
    logger.info(
        "customers.customer_merge_undone", extra={"merge_id": merge.pk, "source_id": source.pk, "target_id": target.pk}
    )
    return merge


def _merge_access_check(*, actor: Actor, customer_ids: list[int]) -> None:
    """A merge (or its undo) moves every ticket of both customers, and their next messages may continue each
    other's tickets: an agent may do it only when they may see all of those tickets. ``NotFound`` otherwise, as
    for any other thing an agent may not see (nothing tells them another team's ticket exists). The tickets are
    locked (after the customers, the order ``message_ingest`` takes), so none moves to another team meanwhile.
    The system and integrations (the company's own systems) are not limited."""
    user = actor.user if actor.kind == TimelineEvent.ActorKind.AGENT else None
    if user is None or user_is_admin(user):
        return
    ticket_ids = list(
        Ticket.objects.select_for_update()
        .filter(customer_id__in=customer_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if ticket_ids_visible(user=user, ticket_ids=ticket_ids) != set(ticket_ids):
        raise NotFound("No such customer.")


def _label(customer: Customer) -> str:
    return f"Customer {customer.pk}" + (f" ({customer.name})" if customer.name else "")


def _email_subscriptions_merge(*, source: Customer, target: Customer) -> tuple[list[int], list[dict]]:
    """One person's email consent after a merge: a purpose only the source decided moves to the target with its
    row; for a purpose both decided differently, the later decision stands (an unsubscribe by link after an
    agent's "subscribed" is not lost). Returns the moved row ids and, for undo, each target row overridden with
    what it was."""
    targets = {row.purpose: row for row in EmailSubscription.objects.select_for_update().filter(customer=target)}
    moved, overridden = [], []
    for row in EmailSubscription.objects.select_for_update().filter(customer=source).order_by("pk"):
        existing = targets.get(row.purpose)
        if existing is None:
            moved.append(row.pk)
        elif existing.is_subscribed != row.is_subscribed and row.updated_at > existing.updated_at:
            overridden.append({"id": existing.pk, "is_subscribed": existing.is_subscribed, "source": existing.source})
            EmailSubscription.objects.filter(pk=existing.pk).update(
                is_subscribed=row.is_subscribed, source=row.source, updated_at=timezone.now()
            )
    if moved:
        EmailSubscription.objects.filter(pk__in=moved).update(customer=target)
    return moved, overridden


def _email_subscriptions_unmerge(*, moved: dict, source: Customer, target: Customer) -> None:
    ids = moved.get("email_subscriptions") or []
    if ids:
        EmailSubscription.objects.filter(pk__in=ids, customer=target).update(customer=source)
    for row in moved.get("email_subscriptions_overridden") or []:
        # Only what the merge set and nobody changed since.
        EmailSubscription.objects.filter(pk=row["id"], customer=target, is_subscribed=not row["is_subscribed"]).update(
            is_subscribed=row["is_subscribed"], source=row["source"], updated_at=timezone.now()
        )


def _is_blank(value) -> bool:
    return value is None or value == ""


def _jsonable(value):
    return str(value) if isinstance(value, Decimal) else value
