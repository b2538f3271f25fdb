"""Celery entry points for channels: thin, plain ids, safe to run twice."""

import time

from celery import shared_task
from django.db import OperationalError

from channels_app.services.delivery_send import DeliveryRateLimited, DeliveryShouldRetry, delivery_send
from channels_app.services.inbound_media import (
    MEDIA_RETRY_BACKOFF_MAX_SECONDS,
    MediaFetchShouldRetry,
    inbound_media_fetch,
)
from channels_app.services.inbound_process import ProcessingShouldRetry, inbound_event_process
from channels_app.services.sweeps import stalled_delivery_ids, stalled_inbound_event_ids, stalled_media_ids
from channels_app.services.webhook_nonces import webhook_nonces_prune


@shared_task(
    name="channels_app.process_inbound_event",
    acks_late=True,
    # A database that is briefly unreachable is worth retrying too (the event stays stored meanwhile).
    autoretry_for=(ProcessingShouldRetry, OperationalError),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=None,  # bounded by INBOUND_MAX_ATTEMPTS in the service
)
def process_inbound_event(event_id: int) -> None:
    inbound_event_process(event_id=event_id)


@shared_task(
    bind=True,
    name="channels_app.deliver_message",
    acks_late=True,
    autoretry_for=(DeliveryShouldRetry, OperationalError),
    retry_backoff=5,
    retry_backoff_max=900,
    max_retries=None,  # bounded by DELIVERY_MAX_ATTEMPTS in the service
)
def deliver_message(self, delivery_id: int) -> None:
    while True:
        try:
            delivery_send(delivery_id=delivery_id)
            return
        except DeliveryRateLimited as exc:
            # The sender's rate had no slot: not a failure, so no backoff; come back exactly when the slot frees.
            if not self.request.is_eager:
                raise self.retry(countdown=exc.retry_after) from exc
            # Run in the caller (CELERY_TASK_ALWAYS_EAGER), an eager retry would ignore the countdown (spin) or
            # propagate as an error; waiting for the slot is what running synchronously means.
            time.sleep(exc.retry_after)


@shared_task(
    name="channels_app.fetch_inbound_media",
    acks_late=True,
    autoretry_for=(MediaFetchShouldRetry, OperationalError),
    retry_backoff=5,
    retry_backoff_max=MEDIA_RETRY_BACKOFF_MAX_SECONDS,
    max_retries=None,  # bounded by MEDIA_FETCH_MAX_ATTEMPTS in the service
)
def fetch_inbound_media(media_id: int) -> None:
    inbound_media_fetch(media_id=media_id)


@shared_task(name="channels_app.requeue_stalled_inbound_events", acks_late=True)
def requeue_stalled_inbound_events() -> int:
    ids = stalled_inbound_event_ids()
    for event_id in ids:
        process_inbound_event.delay(event_id)
    return len(ids)


@shared_task(name="channels_app.requeue_stalled_deliveries", acks_late=True)
def requeue_stalled_deliveries() -> int:
    ids = stalled_delivery_ids()
    for delivery_id in ids:
        deliver_message.delay(delivery_id)
    return len(ids)


# A poll queued longer than this (workers down) is dropped; beat queues a fresh one meanwhile.
IMAP_POLL_EXPIRES_SECONDS = 300


@shared_task(name="channels_app.poll_imap_mailboxes", acks_late=True)
def poll_imap_mailboxes() -> int:
    # Imported here: the IMAP poller imports the parser, whose adapters package imports this module's users.
    from channels_app.providers.email.imap import imap_channel_ids

    ids = imap_channel_ids()
    for channel_id in ids:
        poll_imap_mailbox.apply_async((channel_id,), expires=IMAP_POLL_EXPIRES_SECONDS)
    return len(ids)


@shared_task(name="channels_app.poll_imap_mailbox", acks_late=True)
def poll_imap_mailbox(channel_id: int) -> str:
    from channels_app.providers.email.imap import imap_mailbox_poll

    # Failures are recorded on the mailbox's state row by the service; beat's next round is the retry.
    return imap_mailbox_poll(channel_id=channel_id).status


@shared_task(name="channels_app.requeue_stalled_media", acks_late=True)
def requeue_stalled_media() -> int:
    ids = stalled_media_ids()
    for media_id in ids:
        fetch_inbound_media.delay(media_id)
    return len(ids)


@shared_task(name="channels_app.prune_webhook_nonces", acks_late=True)
def prune_webhook_nonces() -> int:
    return webhook_nonces_prune()
