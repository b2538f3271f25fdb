"""Pruning signed webhooks' used tokens once a replay of them would be refused for its age anyway."""

from celery import shared_task

from channels_app.services.webhook_nonces import webhook_nonces_prune


@shared_task(name="channels_app.prune_webhook_nonces", acks_late=True)
def prune_webhook_nonces() -> int:
    return webhook_nonces_prune()
