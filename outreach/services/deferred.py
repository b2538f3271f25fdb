"""Deferred outreach: messages waiting for the end of the customer's quiet hours, sent when they are due."""

from django.db import transaction
from django.utils import timezone

from outreach.models import OutreachMessage
from outreach.services.delivery import outreach_deliver
from outreach.types import OutreachResult


@transaction.atomic
def outreach_deferred_send(*, outreach_id: int) -> OutreachResult | None:
    """Send a deferred message whose quiet hours are over; None when it is not (or no longer) deferred and due.
    The row is locked, so the ETA task and the beat sweep never both send it."""
    row = (
        OutreachMessage.objects.select_for_update(of=("self",))
        .select_related("customer", "template", "ticket")
        .filter(pk=outreach_id, status=OutreachMessage.Status.DEFERRED, send_after__lte=timezone.now())
        .first()
    )
    if row is None:
        return None
    return outreach_deliver(row=row)


def outreach_due_deferred_ids(*, limit: int = 500) -> list[int]:
    """Deferred messages whose quiet hours are over, oldest due first (for the beat sweep)."""
    due = OutreachMessage.objects.filter(status=OutreachMessage.Status.DEFERRED, send_after__lte=timezone.now())
    return list(due.order_by("send_after", "pk").values_list("pk", flat=True)[:limit])
