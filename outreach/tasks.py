"""Celery entry points of outreach: thin, plain ids, safe to run twice."""

from celery import shared_task

from outreach.services.deferred import outreach_deferred_send, outreach_due_deferred_ids


@shared_task(name="outreach.send_deferred", acks_late=True)
def send_deferred(outreach_id: int) -> None:
    """Send one deferred message once its quiet hours are over (queued with that ETA); early or already sent:
    nothing happens."""
    outreach_deferred_send(outreach_id=outreach_id)


@shared_task(name="outreach.send_due_deferred", acks_late=True)
def send_due_deferred() -> None:
    """Beat's safety net for ETA tasks the broker lost: queue every deferred message that is due."""
    for outreach_id in outreach_due_deferred_ids():
        send_deferred.delay(outreach_id)
