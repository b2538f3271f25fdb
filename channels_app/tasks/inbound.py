"""Processing a stored inbound event onto the timeline."""

from celery import shared_task
from django.db import OperationalError

from channels_app.services.inbound_process import ProcessingShouldRetry, inbound_event_process


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
