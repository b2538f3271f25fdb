"""Creating a delivery for an outbound message; the send itself happens in a task after commit."""

from django.db import transaction
from django.utils import timezone

from channels_app.models import Channel, Delivery
from channels_app.tasks.deliveries import deliver_message


def delivery_create(*, message, channel: Channel, recipient: str) -> Delivery:
    """Queue ``message`` for sending on ``channel``. The caller holds the transaction; the task starts after
    commit, and beat re-enqueues it if the broker was unreachable then."""
    delivery = Delivery.objects.create(message=message, channel=channel, recipient=recipient)
    delivery_id = delivery.pk
    transaction.on_commit(lambda: deliver_message.delay(delivery_id), robust=True)
    return delivery


def delivery_retry(*, delivery: Delivery) -> bool:
    """Send a failed delivery again (an agent's or admin's decision). Returns whether it was re-queued."""
    updated = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.FAILED).update(
        status=Delivery.Status.QUEUED, error="", error_code="", updated_at=timezone.now()
    )
    if updated:
        delivery_id = delivery.pk
        transaction.on_commit(lambda: deliver_message.delay(delivery_id), robust=True)
    return bool(updated)
