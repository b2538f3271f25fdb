"""Beat's sweeps: work whose task was lost (broker down at commit, worker killed) is enqueued again."""

from celery import shared_task

from channels_app.services.sweeps import stalled_delivery_ids, stalled_inbound_event_ids, stalled_media_ids
from channels_app.tasks.deliveries import deliver_message
from channels_app.tasks.inbound import process_inbound_event
from channels_app.tasks.media import fetch_inbound_media


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


@shared_task(name="channels_app.requeue_stalled_media", acks_late=True)
def requeue_stalled_media() -> int:
    ids = stalled_media_ids()
    for media_id in ids:
        fetch_inbound_media.delay(media_id)
    return len(ids)
