"""Where on a channel a customer is reached: shared by agents' replies and the messages the desk starts itself."""

from django.db.models import Case, IntegerField, Value, When

from channels_app.adapters.registry import adapter_for
from channels_app.models import Channel
from customers.models import CustomerIdentity
from tickets.models import Message


def customer_recipient_identity(*, customer_id: int, channel: Channel) -> CustomerIdentity | None:
    """The identity the customer last wrote from on ``channel``, else their best identity of a kind the channel's
    adapter can address (its ``recipient_identity_kinds`` in order, verified and primary first); None when they
    have none. Raises ``AdapterNotFound`` for a channel without an adapter."""
    adapter = adapter_for(channel)
    last = (
        Message.objects.select_related("identity")
        .filter(
            customer_id=customer_id,
            channel=channel,
            direction=Message.Direction.INBOUND,
            identity__customer_id=customer_id,
        )
        .order_by("-created_at")
        .first()
    )
    if last is not None and last.identity is not None:
        return last.identity
    kinds = list(adapter.recipient_identity_kinds)
    rank = Case(*[When(kind=kind, then=Value(i)) for i, kind in enumerate(kinds)], output_field=IntegerField())
    return (
        CustomerIdentity.objects.filter(customer_id=customer_id, kind__in=kinds)
        .annotate(rank=rank)
        .order_by("rank", "-is_verified", "-is_primary", "created_at")
        .first()
    )
