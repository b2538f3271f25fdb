"""Handing a queued delivery to its channel's adapter, recording every attempt and its outcome."""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from channels_app.adapters.base import PermanentDeliveryError, RetryableDeliveryError, SendRateLimited
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel, Delivery, DeliveryAttempt
from channels_app.selectors import sms_opted_out
from channels_app.services.sms_keywords import sms_opt_out_record
from channels_app.types import OutboundAttachment, OutboundMessage
from tickets.models import Message, MessageAlias
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

logger = logging.getLogger(__name__)


# Providers' codes for "the recipient unsubscribed from this sender" (Twilio 21610): they texted STOP where we did
# not see it (or before we kept track), so it is recorded as an opt-out like one we received.
SMS_UNSUBSCRIBED_CODES = frozenset({"21610"})


class DeliveryShouldRetry(Exception):
    """Raised to the task so Celery retries with backoff."""


class DeliveryRateLimited(Exception):
    """Raised to the task when the sender had no free slot: retry after ``retry_after`` seconds. Not an attempt."""

    def __init__(self, retry_after: float):
        super().__init__(f"retry after {retry_after:.2f}s")
        self.retry_after = retry_after


def delivery_send(*, delivery_id: int) -> Delivery | None:
    """Send one delivery if it is queued. Claims it with a conditional update so two workers never send it
    at once; a delivery already sent, delivered or failed is returned untouched.

    Raises ``DeliveryShouldRetry`` after a retryable failure (an attempt is recorded) and ``DeliveryRateLimited``
    when the sender's rate left no slot (the delivery is queued again as if never claimed)."""
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SENDING, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    delivery = Delivery.objects.select_related("channel", "message", "message__ticket").filter(pk=delivery_id).first()
    if not claimed or delivery is None:
        return delivery
    started = timezone.now()
    if delivery.channel.kind == Channel.Kind.SMS and sms_opted_out(phone=delivery.recipient):
        # They texted STOP after the reply was written: sending now would break the opt-out.
        _fail(
            delivery,
            started,
            code="opted_out",
            detail="The recipient opted out of SMS (texted STOP) before this message was sent; it was not sent.",
        )
        return delivery
    try:
        adapter = adapter_for(delivery.channel)
        receipt = adapter.send(channel=delivery.channel, message=_outbound(delivery))
    except AdapterNotFound as exc:
        _fail(delivery, started, code="no_adapter", detail=str(exc))
        return delivery
    except PermanentDeliveryError as exc:
        _fail(delivery, started, code=exc.code, detail=exc.detail)
        delivery_unsubscribed_record(delivery=delivery, code=exc.code)
        return delivery
    except SendRateLimited as exc:
        _unclaim(delivery)
        raise DeliveryRateLimited(exc.retry_after) from exc
    except RetryableDeliveryError as exc:
        if delivery.attempts >= settings.HELPDESK["DELIVERY_MAX_ATTEMPTS"]:
            _fail(
                delivery,
                started,
                code=exc.code,
                detail=f"gave up after {delivery.attempts} attempts: {exc.detail}",
            )
            return delivery
        _record_retryable(delivery, started, code=exc.code, detail=exc.detail)
        raise DeliveryShouldRetry(exc.detail) from exc
    except Exception as exc:
        # A bug in an adapter must not leave the delivery "sending" forever nor vanish: retry, then fail visibly.
        logger.exception("channels_app.delivery_adapter_crashed", extra={"delivery_id": delivery.pk})
        detail = f"{type(exc).__name__} in adapter"
        if delivery.attempts >= settings.HELPDESK["DELIVERY_MAX_ATTEMPTS"]:
            _fail(delivery, started, code="adapter_error", detail=detail)
            return delivery
        _record_retryable(delivery, started, code="adapter_error", detail=detail)
        raise DeliveryShouldRetry(detail) from exc
    with transaction.atomic():
        now = timezone.now()
        status = Delivery.Status.DELIVERED if receipt.is_delivered else Delivery.Status.SENT
        moved = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
            status=status,
            provider_message_id=receipt.provider_message_id,
            sent_at=now,
            updated_at=now,
            error="",
            error_code="",
        )
        if not moved:
            # A status callback was faster than this call's answer and already moved the delivery on (sent,
            # delivered or failed): keep its status, add what only the send knows.
            Delivery.objects.filter(pk=delivery.pk, sent_at__isnull=True).update(sent_at=now)
            Delivery.objects.filter(pk=delivery.pk, provider_message_id="").update(
                provider_message_id=receipt.provider_message_id
            )
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            outcome=DeliveryAttempt.Outcome.SENT,
            started_at=started,
        )
        if receipt.provider_message_id:
            # The provider's id (an email Message-ID, an SMS sid) on the message itself: a customer's answer
            # that refers to it threads onto this ticket, and later replies reference it. An id some other
            # message of the channel already has (a careless callback) must not undo a send that happened.
            try:
                with transaction.atomic():
                    Message.objects.filter(pk=delivery.message_id, provider_id="").update(
                        provider_id=receipt.provider_message_id[:255]
                    )
            except IntegrityError:
                logger.warning("channels_app.delivery_provider_id_taken", extra={"delivery_id": delivery.pk})
        if receipt.aliases:
            # The ids a provider substituted for ours: replies quote those, and must still thread.
            MessageAlias.objects.bulk_create(
                [MessageAlias(message_id=delivery.message_id, value=alias[:255]) for alias in receipt.aliases],
                ignore_conflicts=True,
            )
    logger.info("channels_app.delivery_sent", extra={"delivery_id": delivery.pk, "attempt": delivery.attempts})
    delivery.refresh_from_db()
    return delivery


def _outbound(delivery: Delivery) -> OutboundMessage:
    message: Message = delivery.message
    author_name = ""
    if message.author_id:
        profile = getattr(message.author, "agent_profile", None)
        author_name = (profile.display_name if profile else "") or message.author.get_username()
    earlier = list(
        Message.objects.filter(ticket_id=message.ticket_id, channel_id=delivery.channel_id)
        .exclude(provider_id="")
        .exclude(pk=message.pk)
        .order_by("-created_at")
        .values_list("provider_id", flat=True)[:20]
    )
    return OutboundMessage(
        message_id=message.pk,
        ticket_id=message.ticket_id,
        recipient=delivery.recipient,
        text=message.text,
        html=message.html,
        subject=message.subject or message.ticket.subject,
        author_name=author_name,
        attachments=tuple(
            OutboundAttachment(filename=a.filename, content_type=a.content_type, path=a.file.name, size=a.size)
            for a in message.attachments.all()
        ),
        in_reply_to=tuple(earlier),
        automatic=bool((message.metadata or {}).get("automatic")),
        cc=tuple((message.metadata or {}).get("cc") or ()),
        is_desk_started=bool((message.metadata or {}).get("desk_started")),
        list_unsubscribe=tuple((message.metadata or {}).get("list_unsubscribe") or ()),
    )


def _unclaim(delivery: Delivery) -> None:
    """Put a claimed delivery back as it was before the claim: no slot to send it was no attempt."""
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.QUEUED, attempts=F("attempts") - 1, updated_at=timezone.now()
    )
    delivery.refresh_from_db()
    logger.info("channels_app.delivery_rate_limited", extra={"delivery_id": delivery.pk})


def delivery_unsubscribed_record(*, delivery: Delivery, code: str) -> None:
    """A provider's error ``code`` that means the recipient unsubscribed from us (texted STOP where we did not see
    it) opts the number out like a STOP we received, timeline event included. Other codes change nothing."""
    if code in SMS_UNSUBSCRIBED_CODES and delivery.channel.kind == Channel.Kind.SMS:
        sms_opt_out_record(
            phone=delivery.recipient,
            channel=delivery.channel,
            keyword=f"provider:{code}",
            customer_id=delivery.message.customer_id,
            delivery_id=delivery.pk,
        )


def _record_retryable(delivery: Delivery, started, *, code: str, detail: str) -> None:
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.QUEUED, error=detail, error_code=code, updated_at=timezone.now()
        )
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            outcome=DeliveryAttempt.Outcome.RETRYABLE_ERROR,
            error_code=code,
            error=detail,
            started_at=started,
        )
    logger.warning("channels_app.delivery_retrying", extra={"delivery_id": delivery.pk, "code": code})


def _fail(delivery: Delivery, started, *, code: str, detail: str) -> None:
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.FAILED, error=detail, error_code=code, updated_at=timezone.now()
        )
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            outcome=DeliveryAttempt.Outcome.PERMANENT_ERROR,
            error_code=code,
            error=detail,
            started_at=started,
        )
        delivery_failed_event_record(delivery=delivery, code=code, detail=detail)
    delivery.refresh_from_db()
    logger.warning("channels_app.delivery_failed", extra={"delivery_id": delivery.pk, "code": code})


def delivery_failed_event_record(*, delivery: Delivery, code: str, detail: str, source: str = "delivery", **params):
    """The ``delivery_failed`` timeline event on the delivery's ticket; ``source`` says who found out (the send
    itself, or a bounce that came back later)."""
    ticket = delivery.message.ticket
    event_record(
        customer_id=ticket.customer_id,
        ticket_id=ticket.pk,
        type=TimelineEvent.Type.DELIVERY_FAILED,
        actor=Actor.system(source),
        params={
            "message_id": delivery.message_id,
            "delivery_id": delivery.pk,
            "channel_id": delivery.channel_id,
            "error_code": code,
            "error": detail,
            **params,
        },
    )
