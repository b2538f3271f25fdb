"""Writes for customers: recognising them from an identity, upserts from the company's systems, context events."""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from customers.models import ContextEvent, Customer, CustomerIdentity
from customers.types import IdentityInput
from helpdesk.errors import Conflict

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
    *, identity: IdentityInput, name: str = "", seen_on: "Channel | None" = None
) -> tuple[Customer, CustomerIdentity, bool]:
    """The customer who owns ``identity``, creating customer and identity when nobody does.

    Safe under concurrency: the identity's unique constraint decides who creates it, and the loser reads the
    winner's row. Returns ``(customer, identity, created)``. ``seen_on``: the channel the customer is writing on
    now, recorded as their last channel and visit when the customer is created (the caller records it otherwise).
    """
    existing, is_known_absent = _identity_known(identity)
    if existing is not None:
        if identity.is_verified and not existing.is_verified:
            CustomerIdentity.objects.filter(pk=existing.pk).update(is_verified=True)
            existing.is_verified = True
        return existing.customer, existing, False
    if is_known_absent:
        # A batch read it as absent in this transaction: no savepoint. Should another process have created it
        # meanwhile, IntegrityError goes to the batch, whose savepoint undoes this and which tries again.
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
        return existing.customer, existing, False
    logger.info("customers.customer_created", extra={"customer_id": customer.pk})
    return customer, created_identity, True


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
            if field == "lifetime_value" and value is not None:
                value = Decimal(value)
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
