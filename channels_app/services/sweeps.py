"""Finding work whose task was lost (broker down at commit, worker killed) so beat can enqueue it again.

Each sweep touches ``updated_at`` of what it returns, so a backlog is re-enqueued once per stall period, not
on every beat tick.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels_app.models import Delivery, InboundEvent, InboundMedia
from channels_app.services.inbound_media import MEDIA_RETRY_BACKOFF_MAX_SECONDS

BATCH = 500


def _cutoff():
    return timezone.now() - timedelta(seconds=settings.HELPDESK["STALLED_AFTER_SECONDS"])


@transaction.atomic
def stalled_inbound_event_ids() -> list[int]:
    ids = list(
        InboundEvent.objects.filter(
            Q(status=InboundEvent.Status.RECEIVED)
            | Q(status=InboundEvent.Status.FAILED, attempts__lt=settings.HELPDESK["INBOUND_MAX_ATTEMPTS"]),
            updated_at__lt=_cutoff(),
        )
        .order_by("updated_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    InboundEvent.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    return ids


@transaction.atomic
def stalled_delivery_ids() -> list[int]:
    """Queued deliveries nobody picked up, and 'sending' ones whose worker died mid-send (queued again)."""
    cutoff = _cutoff()
    ids = list(
        Delivery.objects.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING], updated_at__lt=cutoff)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.QUEUED, updated_at=timezone.now())
    return ids


@transaction.atomic
def stalled_media_ids() -> list[int]:
    """MMS media still waiting to be fetched whose task was lost (broker down at commit, worker killed).

    One that failed an attempt waits in its task's retry backoff (up to ``MEDIA_RETRY_BACKOFF_MAX_SECONDS``), so it
    counts as lost only after that: the sweep must not add early attempts to a fetch that is backing off."""
    backing_off_cutoff = timezone.now() - timedelta(seconds=MEDIA_RETRY_BACKOFF_MAX_SECONDS + 60)
    ids = list(
        InboundMedia.objects.filter(status=InboundMedia.Status.PENDING)
        .filter(Q(attempts=0, updated_at__lt=_cutoff()) | Q(updated_at__lt=backing_off_cutoff))
        .order_by("updated_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    InboundMedia.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    return ids
