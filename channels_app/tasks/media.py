"""Fetching one MMS media file into an attachment."""

from celery import shared_task
from django.db import OperationalError

from channels_app.services.inbound_media import (
    MEDIA_RETRY_BACKOFF_MAX_SECONDS,
    MediaFetchShouldRetry,
    inbound_media_fetch,
)


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
