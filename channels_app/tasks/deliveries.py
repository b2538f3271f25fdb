"""Sending one delivery through its channel's adapter."""

import time

from celery import shared_task
from django.db import OperationalError

from channels_app.services.delivery_send import DeliveryRateLimited, DeliveryShouldRetry, delivery_send


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
