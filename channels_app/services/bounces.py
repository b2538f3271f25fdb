"""Acting on a bounce: the outbound message it refers to is marked undelivered, and nothing else happens.

A bounce is never a customer's message: it opens no ticket and threads onto none. When it names a message we
sent (by our signed Message-ID, the provider id stored on the message, or an id a provider substituted for ours),
that message's delivery becomes failed and its ticket's timeline says so. A delivery already ``delivered`` fails
too: a provider's "delivered" means the next hop took it, and a bounce is later evidence that the last hop did not.
Delay warnings (RFC 3464 ``delayed``, 4.x.x) change nothing: the MTA is still trying.
"""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from channels_app.models import Channel, Delivery, InboundEvent
from channels_app.services.delivery_send import delivery_failed_event_record
from channels_app.threading_refs import parse_our_message_id
from tickets.models import Message, MessageAlias

logger = logging.getLogger(__name__)

BOUNCED = "bounced"
MAX_ERROR_CHARS = 2000
# A bare provider id (no "@") matches the local part of a quoted Message-ID only when it is long enough not to
# collide by chance (as tickets.services.threading does).
MIN_BARE_ALIAS_CHARS = 16


@dataclass(frozen=True)
class BounceOutcome:
    """What a bounce did. ``reason`` is kept on the inbound event, so an admin sees why no ticket came of it."""

    reason: str
    delivery_id: int | None = None
    message_id: int | None = None
    is_changed: bool = False

    @property
    def is_matched(self) -> bool:
        return self.message_id is not None


@transaction.atomic
def email_bounce_record(*, channel: Channel, event: InboundEvent | None, bounce: dict) -> BounceOutcome:
    """Fail the delivery ``bounce`` (``metadata["bounce"]`` of a parsed email) refers to, once.

    Idempotent: the delivery is updated only from a non-failed status, under a row lock, so the same bounce twice
    (or two bounces for one message) records one failure and one timeline event.
    """
    message = _bounced_message(channel=channel, ids=tuple(bounce.get("original_message_ids") or ()))
    event_id = event.pk if event is not None else None
    if message is None:
        logger.info("channels_app.bounce_unmatched", extra={"event_id": event_id, "channel_id": channel.pk})
        return BounceOutcome(reason="bounce for a message we did not send")
    delivery = Delivery.objects.select_for_update().select_related("message__ticket").filter(message=message).first()
    if delivery is None:
        return BounceOutcome(reason=f"bounce for message {message.pk}, which has no delivery", message_id=message.pk)
    if not bounce.get("is_permanent"):
        return BounceOutcome(
            reason=f"delivery delay report for message {message.pk}; delivery unchanged",
            delivery_id=delivery.pk,
            message_id=message.pk,
        )
    if delivery.status == Delivery.Status.FAILED:
        return BounceOutcome(
            reason=f"bounce for message {message.pk}, whose delivery had already failed",
            delivery_id=delivery.pk,
            message_id=message.pk,
        )
    detail = _detail(bounce)
    previous = delivery.status
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.FAILED, error_code=BOUNCED, error=detail, updated_at=timezone.now()
    )
    delivery_failed_event_record(
        delivery=delivery,
        code=BOUNCED,
        detail=detail,
        source="bounce",
        previous_status=previous,
        bounce_event_id=event_id,
        failed_recipients=[item.get("address", "") for item in bounce.get("recipients") or []][:5],
    )
    logger.warning(
        "channels_app.delivery_bounced",
        extra={"delivery_id": delivery.pk, "event_id": event_id, "previous_status": previous},
    )
    return BounceOutcome(
        reason=f"bounce: delivery of message {message.pk} failed",
        delivery_id=delivery.pk,
        message_id=message.pk,
        is_changed=True,
    )


def _bounced_message(*, channel: Channel, ids: tuple[str, ...]) -> Message | None:
    """Our outbound message the bounce returns, trying its ids in the order the bounce gave them."""
    if not ids:
        return None
    outbound = Message.objects.filter(direction=Message.Direction.OUTBOUND)
    signed = {value: pk for value in ids if (pk := parse_our_message_id(value)) is not None}
    # Our signature proves we sent it, whichever of our mailboxes the bounce came back to.
    by_pk = outbound.in_bulk(set(signed.values())) if signed else {}
    by_provider_id = {message.provider_id: message for message in outbound.filter(channel=channel, provider_id__in=ids)}
    local_parts = {value: value.strip("<>").rpartition("@")[0] for value in ids}
    alias_values = set(ids) | {part for part in local_parts.values() if len(part) >= MIN_BARE_ALIAS_CHARS}
    by_alias = {}
    for alias in MessageAlias.objects.select_related("message").filter(
        value__in=alias_values, message__direction=Message.Direction.OUTBOUND, message__channel=channel
    ):
        by_alias.setdefault(alias.value, alias.message)
    for value in ids:
        found = (
            by_pk.get(signed.get(value))
            or by_provider_id.get(value)
            or by_alias.get(value)
            or by_alias.get(local_parts[value])
        )
        if found is not None:
            return found
    return None


def _detail(bounce: dict) -> str:
    """Status and diagnostic, as an agent reads them: "5.1.1 <ann@example.com>: user unknown"."""
    recipients = bounce.get("recipients") or []
    first = next((item for item in recipients if item.get("is_permanent")), recipients[0] if recipients else {})
    status = first.get("status") or bounce.get("status") or ""
    diagnostic = first.get("diagnostic") or bounce.get("diagnostic") or ""
    address = first.get("address") or ""
    parts = [status, f"<{address}>:" if address else "", diagnostic]
    detail = " ".join(part for part in parts if part).strip() or "the recipient's mail server returned the message"
    return detail[:MAX_ERROR_CHARS]
