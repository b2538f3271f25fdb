"""Applying a provider's status callbacks (Twilio's MessageStatus) to a delivery, only ever forward.

Callbacks arrive late, twice, and out of order (``sent`` after ``delivered``); the provider's statuses are ranked,
and a delivery moves only to a higher rank, with a conditional update, so the last writer cannot undo what a
later status said, and a terminal status (delivered, failed...) is final. ``provider_status`` records the
provider's word; ``status`` our own: delivered/read -> delivered, undelivered/failed/canceled -> failed (with the
provider's error code, a readable reason and one ``delivery_failed`` timeline event).
"""

import logging

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from channels_app.models import Channel, Delivery
from channels_app.services.delivery_send import delivery_failed_event_record, delivery_unsubscribed_record
from helpdesk.text import ascii_int

logger = logging.getLogger(__name__)

PROVIDER_STATUS_RANK = {
    "queued": 0,
    "accepted": 0,
    "scheduled": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "read": 3,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
}
_DELIVERED = {"delivered", "read"}
_FAILED = {"undelivered", "failed", "canceled"}

# Twilio's common delivery error codes, for the agent who sees why a message did not arrive.
TWILIO_ERRORS = {
    "30001": "Twilio's queue overflowed (too many messages for this sender); send it again later.",
    "30002": "The Twilio account is suspended.",
    "30003": "The recipient's phone is unreachable (switched off or out of coverage).",
    "30004": "The message was blocked (the recipient blocked this number, or the carrier did).",
    "30005": "Unknown destination: the number does not exist or is no longer in service.",
    "30006": "The number is a landline or its carrier cannot receive SMS.",
    "30007": "The carrier filtered the message (spam or content rules).",
    "30008": "Unknown error at the carrier.",
    "30009": "A segment of the message went missing.",
    "30010": "The message price exceeded the configured maximum.",
    "21610": "The recipient has unsubscribed (texted STOP) from this sender.",
}


def delivery_status_find(*, channel: Channel, message_id: str, provider_message_id: str) -> Delivery | None:
    """The delivery a callback is about: by our message id (the callback URL names it) on this channel, else by
    the provider's id. A delivery that already has a different provider id is not this callback's (it belongs to
    another send of the same message), so None."""
    deliveries = Delivery.objects.filter(channel=channel)
    delivery = None
    our_id = ascii_int(message_id)
    if our_id is not None:
        delivery = deliveries.filter(message_id=our_id).first()
    if delivery is None and provider_message_id:
        delivery = deliveries.filter(provider_message_id=provider_message_id).first()
    if delivery is None:
        return None
    if delivery.provider_message_id and provider_message_id and delivery.provider_message_id != provider_message_id:
        return None
    return delivery


@transaction.atomic
def delivery_status_apply(
    *, delivery: Delivery, provider_status: str, provider_message_id: str = "", error_code: str = ""
) -> bool:
    """Move ``delivery`` to ``provider_status`` if that is forward of where it stands. Returns whether it moved.

    Safe to call twice and concurrently: the update is conditional on the current provider status being of a lower
    rank (and on our status not being final), so exactly one caller moves it, and only that caller writes the
    failure event.
    """
    provider_status = provider_status.strip().lower()
    rank = PROVIDER_STATUS_RANK.get(provider_status)
    if rank is None:
        logger.info("channels_app.delivery_status_unknown", extra={"delivery_id": delivery.pk})
        return False
    lower = [status for status, other in PROVIDER_STATUS_RANK.items() if other < rank] + [""]
    updates = {
        "provider_status": provider_status,
        "updated_at": timezone.now(),
        # The callback may come before the send task stored the sid: take it from the callback then.
        "provider_message_id": Case(
            When(provider_message_id="", then=Value(provider_message_id[:255])), default=F("provider_message_id")
        ),
    }
    error = ""
    if provider_status in _DELIVERED:
        updates["status"] = Delivery.Status.DELIVERED
    elif provider_status in _FAILED:
        error_code = error_code.strip() or provider_status
        error = TWILIO_ERRORS.get(error_code, f"The provider reports the message {provider_status}.")
        updates.update(status=Delivery.Status.FAILED, error_code=error_code[:64], error=error)
    elif provider_status == "sent":
        # Only from sending/sent: a queued delivery (retrying after a timeout) must still be sent by its task.
        updates["status"] = Case(
            When(status=Delivery.Status.SENDING, then=Value(Delivery.Status.SENT)), default=F("status")
        )
    moved = Delivery.objects.filter(
        pk=delivery.pk,
        provider_status__in=lower,
        status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.SENT],
    ).update(**updates)
    if not moved:
        return False
    delivery.refresh_from_db()
    if delivery.status == Delivery.Status.FAILED:
        delivery_failed_event_record(
            delivery=delivery,
            code=delivery.error_code,
            detail=error,
            source="provider",
            provider_status=provider_status,
        )
        delivery_unsubscribed_record(delivery=delivery, code=error_code)
    logger.info(
        "channels_app.delivery_status_moved",
        extra={"delivery_id": delivery.pk, "provider_status": provider_status},
    )
    return True
