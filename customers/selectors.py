"""Reads of customers."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from channels_app.adapters.base import DESK_STARTED_PURPOSES, PURPOSE_LABELS
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel, SmsOptOut
from customers.identities import normalise_phone
from customers.models import ContextEvent, Customer, CustomerIdentity, CustomerMerge, EmailSubscription
from helpdesk.errors import DomainError, NotFound
from helpdesk.text import ascii_int


def customer_get(*, customer_id: int, with_identities: bool = True) -> Customer:
    customers = Customer.objects.prefetch_related("identities") if with_identities else Customer.objects.all()
    customer = customers.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("No such customer.")
    return customer


def customer_list(*, query: str = "") -> QuerySet[Customer]:
    customers = (
        Customer.objects.filter(merged_into__isnull=True).prefetch_related("identities").order_by("-updated_at", "-id")
    )
    if query:
        customers = customers.filter(name__icontains=query) | customers.filter(
            identities__value__icontains=query.lower()
        )
    return customers.distinct()


# The console's reads. Customers are not scoped by team: every agent may see every customer (as the REST API
# lets them); what is scoped is their tickets and messages, through tickets.selectors.


@dataclass(frozen=True)
class CustomerPage:
    customers: list[Customer]
    next_cursor: str | None


def customer_search_page(*, query: str = "", cursor: str | None = None, limit: int = 50) -> CustomerPage:
    """One page of customers, most recent activity first (``updated_at``, which every inbound message touches),
    merged customers left out. ``query`` matches name, company, an identity (email, phone, external id; a typed
    phone number is normalised to E.164 first) or the customer id. Keyset pagination: a page past the millionth
    customer costs what the first costs (index ``customer_activity_idx``)."""
    customers = Customer.objects.filter(merged_into__isnull=True)
    query = query.strip()[:200]
    if query:
        customers = customers.filter(_search_q(query))
    if cursor:
        at, customer_id = _decode_cursor(cursor)
        customers = customers.filter(Q(updated_at__lt=at) | Q(updated_at=at, pk__lt=customer_id))
    rows = list(customers.prefetch_related("identities").order_by("-updated_at", "-pk")[: limit + 1])
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return CustomerPage(customers=page, next_cursor=next_cursor)


def customer_profile_get(*, customer_id: int) -> Customer:
    """The customer with identities and last channel, merged or not (the caller sends a merged one on to the
    surviving customer); NotFound when there is none."""
    customer = (
        Customer.objects.select_related("last_channel", "merged_into")
        .prefetch_related("identities")
        .filter(pk=customer_id)
        .first()
    )
    if customer is None:
        raise NotFound("No such customer.")
    return customer


def customer_context_events_recent(*, customer: Customer, limit: int = 10) -> list[ContextEvent]:
    return list(ContextEvent.objects.filter(customer=customer).order_by("-occurred_at", "-id")[:limit])


def customer_merges_recent(*, customer: Customer, limit: int = 5) -> list[CustomerMerge]:
    """The latest merges into ``customer`` (undone ones too, marked), for the profile's undo buttons."""
    return list(
        CustomerMerge.objects.filter(target=customer)
        .select_related("source", "actor", "undone_by")
        .order_by("-created_at", "-id")[:limit]
    )


def customer_merge_get(*, merge_id: int) -> CustomerMerge:
    merge = CustomerMerge.objects.select_related("source", "target").filter(pk=merge_id).first()
    if merge is None:
        raise NotFound("No such merge.")
    return merge


PHONE_PUNCTUATION = set(" ()+-./")
# Only ASCII digits are digits of a phone number or an id ("²".isdigit() is true; int("²") raises).
ASCII_DIGITS = set("0123456789")


def _search_q(query: str) -> Q:
    lowered = query.lower()
    identities = CustomerIdentity.objects.filter(customer=OuterRef("pk"))
    identity_match = Q(value__icontains=lowered)
    if any(character in ASCII_DIGITS for character in query):
        try:
            phone = normalise_phone(query)
        except ValueError:
            phone = ""
        if phone:
            identity_match |= Q(kind=CustomerIdentity.Kind.PHONE, value=phone)
        digits = "".join(character for character in query if character in ASCII_DIGITS)
        if len(digits) >= 4 and all(character in ASCII_DIGITS | PHONE_PUNCTUATION for character in query):
            # Part of a number as people type it, "(415) 555": the stored E.164 form holds the same digits.
            identity_match |= Q(kind=CustomerIdentity.Kind.PHONE, value__contains=digits)
    match = Q(name__icontains=query) | Q(company__icontains=query) | Exists(identities.filter(identity_match))
    customer_id = ascii_int(query)
    if customer_id is not None:
        match |= Q(pk=customer_id)
    return match


def _encode_cursor(customer: Customer) -> str:
    raw = f"{customer.updated_at.isoformat()}|{customer.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, id_text = raw.split("|")
        at, customer_id = datetime.fromisoformat(at_text), int(id_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise DomainError("Invalid cursor.", code="invalid_cursor") from exc
    if at.tzinfo is None:
        raise DomainError("Invalid cursor.", code="invalid_cursor")
    return at, customer_id


@dataclass(frozen=True)
class EmailSubscriptionState:
    purpose: str
    label: str
    is_subscribed: bool


@dataclass(frozen=True)
class ContactPreferences:
    """What the customer's profile shows of how the desk may write to them first."""

    preferred_channel_id: int | None
    channels: list[Channel]  # the active channels an agent may choose as preferred
    email_subscriptions: list[EmailSubscriptionState]
    is_sms_opted_out: bool


def customer_contact_preferences_get(*, customer: Customer) -> ContactPreferences:
    """Four queries, whatever the customer has: their identities, the channels, their subscriptions, their SMS
    opt-out. The channels offered are the active ones that can address one of the customer's identities (a
    preferred channel they have no address on would only ever be skipped), and the current preference."""
    identities = list(CustomerIdentity.objects.filter(customer=customer).values_list("kind", "value"))
    kinds = {kind for kind, _ in identities}
    phones = [value for kind, value in identities if kind == CustomerIdentity.Kind.PHONE]
    unsubscribed = set(
        EmailSubscription.objects.filter(customer=customer, is_subscribed=False).values_list("purpose", flat=True)
    )
    channels = [
        channel
        for channel in Channel.objects.filter(is_active=True).order_by("kind", "name", "pk")
        if channel.pk == customer.preferred_channel_id or _can_address(channel, kinds)
    ]
    return ContactPreferences(
        preferred_channel_id=customer.preferred_channel_id,
        channels=channels,
        email_subscriptions=[
            EmailSubscriptionState(
                purpose=purpose, label=PURPOSE_LABELS[purpose], is_subscribed=purpose not in unsubscribed
            )
            for purpose in DESK_STARTED_PURPOSES
        ],
        is_sms_opted_out=bool(phones) and SmsOptOut.objects.filter(phone__in=phones).exists(),
    )


def _can_address(channel: Channel, identity_kinds: set[str]) -> bool:
    try:
        return bool(identity_kinds & set(adapter_for(channel).recipient_identity_kinds))
    except AdapterNotFound:
        return False
