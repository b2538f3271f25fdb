"""Sending a message no customer message prompted: a routing notice, an outage notification, a survey.

``outreach_send`` is the one door for all of them. It claims the caller's key (a unique row, so a retried task or
a concurrent duplicate sends nothing twice), waits out quiet hours where the purpose asks for it (the row is
deferred, and sent by ``outreach.services.deferred`` when they end), and otherwise sends at once
(``outreach.services.delivery``). Whatever it decides is an ``OutreachMessage`` row and a timeline event; an
unreachable customer is a recorded reason, never an exception.
"""

import logging
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from channels_app.adapters.base import DESK_STARTED_PURPOSES, PURPOSE_SURVEY
from channels_app.models import Channel
from customers.models import Customer
from helpdesk.errors import Conflict, DomainError
from outreach.models import OutreachMessage, OutreachTemplate
from outreach.quiet_hours import customer_zone, quiet_hours_end
from outreach.rendering import FILLED_BY_SERVICE, PLACEHOLDERS
from outreach.services.delivery import outreach_deliver, outreach_event_record, outreach_result
from outreach.tasks import send_deferred
from outreach.types import LAST_USED, PREFERRED, OutreachResult
from tickets.models import Ticket
from timeline.models import TimelineEvent

logger = logging.getLogger(__name__)

# Purposes that can wait for the morning. An outage notice or a notice about the customer's own ticket cannot.
QUIET_HOURS_PURPOSES = frozenset({PURPOSE_SURVEY})
DEFAULT_PREFERENCE = (PREFERRED, LAST_USED)


@transaction.atomic
def outreach_send(
    *,
    customer: Customer,
    purpose: str,
    template: OutreachTemplate,
    key: str,
    context: Mapping[str, object] | None = None,
    channel_preference: Sequence[Channel | int | str] = DEFAULT_PREFERENCE,
    ticket: Ticket | None = None,
) -> OutreachResult:
    """Write first to ``customer`` for ``purpose`` with ``template``, once per ``key``.

    ``channel_preference`` is tried in order: a ``Channel`` (or its id), ``"preferred"`` (the customer's preferred
    channel) or ``"last_used"`` (the one they last wrote on). ``context`` fills the purpose's placeholders that the
    service does not (``customer.*`` and ``ticket.*`` it fills itself). With ``ticket``, the message goes on it
    (a closed or merged ticket gets a desk-started follow-up instead).

    The same ``key`` again returns the first call's result and sends nothing; a concurrent duplicate waits for the
    first transaction on the key's unique index and then does the same. Raises ``DomainError`` only for a bad
    request (unknown purpose, a template of another purpose, context the purpose does not know, an empty key);
    a customer who cannot be reached is a ``skipped`` result with the reason."""
    values = _request_check(purpose=purpose, template=template, key=key, context=context or {})
    existing = _result_for_key(key=key, customer=customer)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            row = OutreachMessage.objects.create(
                key=key,
                customer=customer,
                purpose=purpose,
                template=template,
                context=values,
                channel_preference=[_preference_step(step) for step in channel_preference],
                status=OutreachMessage.Status.SKIPPED,
                ticket=ticket,
            )
    except IntegrityError:
        existing = _result_for_key(key=key, customer=customer)
        if existing is None:
            raise
        return existing
    if purpose in QUIET_HOURS_PURPOSES:
        zone = customer_zone(customer.time_zone)
        ends_at = quiet_hours_end(now=timezone.now(), zone=zone)
        if ends_at is not None:
            return _defer(row, ends_at=ends_at, zone_name=zone.key)
    return outreach_deliver(row=row)


def _request_check(*, purpose: str, template: OutreachTemplate, key: str, context: Mapping) -> dict[str, str]:
    if purpose not in DESK_STARTED_PURPOSES:
        raise DomainError(f"Unknown purpose {purpose!r}.", code="unknown_purpose")
    if template.purpose != purpose:
        raise DomainError(
            f"The template {template.name!r} is for {template.purpose}, not {purpose}.", code="template_purpose"
        )
    if not key or len(key) > OutreachMessage._meta.get_field("key").max_length:
        raise DomainError("An outreach needs a key of 1 to 200 characters.", code="invalid_key")
    allowed = set(PLACEHOLDERS[purpose]) - FILLED_BY_SERVICE
    unknown = sorted(str(name) for name in context if name not in allowed)
    if unknown:
        raise DomainError(
            f"The {purpose} context does not take {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}.",
            code="unknown_context",
        )
    return {name: "" if value is None else str(value) for name, value in context.items()}


def _result_for_key(*, key: str, customer: Customer) -> OutreachResult | None:
    row = OutreachMessage.objects.filter(key=key).first()
    if row is None:
        return None
    if row.customer_id != customer.pk:
        raise Conflict("This outreach key was already used for another customer.", code="key_reused")
    return outreach_result(row)


def _preference_step(step) -> int | str:
    if isinstance(step, Channel):
        return step.pk
    if step in (PREFERRED, LAST_USED) or (isinstance(step, int) and not isinstance(step, bool)):
        return step
    raise DomainError(f"Unknown channel preference {step!r}.", code="unknown_channel_preference")


def _defer(row: OutreachMessage, *, ends_at, zone_name: str) -> OutreachResult:
    local = timezone.localtime(ends_at, customer_zone(zone_name))
    row.status = OutreachMessage.Status.DEFERRED
    row.send_after = ends_at
    row.reason = "quiet_hours"
    row.detail = f"Quiet hours in {zone_name}: it goes out at {local:%Y-%m-%d %H:%M} there."
    row.save(update_fields=["status", "send_after", "reason", "detail", "updated_at"])
    outreach_event_record(row, TimelineEvent.Type.OUTREACH_DEFERRED, send_after=ends_at.isoformat(), detail=row.detail)
    outreach_id = row.pk
    # Redis redelivers a task not acknowledged within the visibility timeout, and a worker holds an ETA task
    # unacknowledged until it is due: a longer wait is left to beat's sweep rather than queued (and redelivered)
    # hourly. Either way the row lock makes it go once.
    if (ends_at - timezone.now()).total_seconds() < _eta_limit_seconds():
        transaction.on_commit(lambda: send_deferred.apply_async((outreach_id,), eta=ends_at), robust=True)
    logger.info("outreach.deferred", extra={"outreach_id": row.pk, "customer_id": row.customer_id})
    return outreach_result(row)


def _eta_limit_seconds() -> float:
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    return options.get("visibility_timeout", 3600) * 0.9
