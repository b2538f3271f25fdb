"""Services for how a customer wants the desk to write to them first: their preferred channel, and which purposes
of desk-started email they receive. Every change is a timeline event; setting what is already set records none."""

import logging

from django.db import transaction

from channels_app.adapters.base import DESK_STARTED_PURPOSES
from channels_app.models import Channel
from customers.models import Customer, EmailSubscription
from helpdesk.errors import DomainError
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

logger = logging.getLogger(__name__)


@transaction.atomic
def customer_email_subscription_set(
    *, customer: Customer, purpose: str, is_subscribed: bool, source: str, actor: Actor
) -> bool:
    """Subscribe the customer to, or unsubscribe them from, desk-started email of ``purpose``. Returns whether
    anything changed: a second identical call (a one-click unsubscribe POSTed twice) changes nothing and records
    no event. An existing row is locked while it is compared; a first unsubscribe relies on the unique
    (customer, purpose) constraint, so two at once write one row and one event."""
    if purpose not in DESK_STARTED_PURPOSES:
        raise DomainError(f"Unknown purpose {purpose!r}.", code="unknown_purpose")
    subscription = EmailSubscription.objects.select_for_update().filter(customer=customer, purpose=purpose).first()
    if subscription is None:
        # No row means subscribed: subscribing is no change, and writes no row.
        if is_subscribed:
            return False
        subscription, created = EmailSubscription.objects.get_or_create(
            customer=customer, purpose=purpose, defaults={"is_subscribed": False, "source": source}
        )
        if not created and not subscription.is_subscribed:
            return False  # a concurrent unsubscribe wrote it first: already done, recorded once by that one
        if not created:
            EmailSubscription.objects.filter(pk=subscription.pk).update(is_subscribed=False, source=source)
    elif subscription.is_subscribed == is_subscribed:
        return False
    else:
        EmailSubscription.objects.filter(pk=subscription.pk).update(is_subscribed=is_subscribed, source=source)
    event_record(
        customer_id=customer.pk,
        type=TimelineEvent.Type.EMAIL_SUBSCRIPTION_CHANGED,
        actor=actor,
        params={"purpose": purpose, "is_subscribed": is_subscribed, "source": source},
    )
    logger.info(
        "customers.email_subscription_changed",
        extra={"customer_id": customer.pk, "purpose": purpose, "is_subscribed": is_subscribed},
    )
    return True


@transaction.atomic
def customer_preferred_channel_set(*, customer: Customer, channel: Channel | None, actor: Actor) -> bool:
    """Set (or, with None, clear) the channel the desk writes first on. Returns whether it changed."""
    if channel is not None and not channel.is_active:
        raise DomainError(f"The channel {channel.name} is disabled.", code="channel_disabled")
    current = Customer.objects.select_for_update().filter(pk=customer.pk).values_list("preferred_channel_id", flat=True)
    previous_id = current.get()
    new_id = channel.pk if channel is not None else None
    if previous_id == new_id:
        return False
    Customer.objects.filter(pk=customer.pk).update(preferred_channel_id=new_id)
    customer.preferred_channel = channel
    event_record(
        customer_id=customer.pk,
        type=TimelineEvent.Type.PREFERRED_CHANNEL_CHANGED,
        actor=actor,
        params={"from": previous_id, "to": new_id, "channel": channel.name if channel is not None else ""},
    )
    return True


@transaction.atomic
def customer_contact_preferences_update(
    *, customer: Customer, preferred_channel: Channel | None, email_subscribed: dict[str, bool], actor: Actor
) -> bool:
    """An agent's save of the profile's contact preferences, all or nothing. Returns whether anything changed."""
    changed = customer_preferred_channel_set(customer=customer, channel=preferred_channel, actor=actor)
    for purpose, is_subscribed in email_subscribed.items():
        changed |= customer_email_subscription_set(
            customer=customer,
            purpose=purpose,
            is_subscribed=is_subscribed,
            source=EmailSubscription.Source.AGENT,
            actor=actor,
        )
    return changed
