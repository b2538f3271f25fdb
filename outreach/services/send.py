"""Sending a message no customer message prompted: a routing notice, an outage notification, a survey.

``outreach_send`` is the one door for all of them. It claims the caller's key (a unique row, so a retried task or
a concurrent duplicate sends nothing twice), waits out quiet hours where the purpose asks for it, walks the
caller's channel preference in order until a channel can reach the customer (an identity it can address, the
adapter's ``reachability`` for the purpose, a template part it can render within its limits), and hands the message
to the ordinary outbound path: a ``Message`` on a ticket and a ``Delivery`` (attempts, retries, status callbacks,
bounces). Whatever it decides is an ``OutreachMessage`` row and a timeline event; an unreachable customer is a
recorded reason, never an exception.

A message with no ticket opens a desk-started ticket, already solved (so that a thousand outage notices do not
flood the queues): the customer's answer threads onto it like any answer (the email reply token, the threading
rules) and reopens it, as Zendesk's proactive tickets do. ``Message.ticket`` stays required.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.html import escape

from channels_app.adapters.base import DESK_STARTED_PURPOSES, PURPOSE_SURVEY, ChannelAdapter
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel
from channels_app.services.deliveries import delivery_create
from customers.models import Customer, CustomerIdentity
from helpdesk.errors import Conflict, DomainError

# The module, not its task: the tasks module imports this one (as channels_app deliveries and tasks do).
from outreach import tasks
from outreach.models import OutreachMessage, OutreachTemplate
from outreach.quiet_hours import customer_zone, quiet_hours_end
from outreach.rendering import FILLED_BY_SERVICE, PLACEHOLDERS, RenderedMessage, TemplateRenderError, template_render
from outreach.types import LAST_USED, PREFERRED, OutreachResult
from outreach.unsubscribe import CUSTOMER_LABELS, unsubscribe_url
from realtime.publish import message_created_publish
from tickets.models import Message, Ticket, TimelineEvent
from tickets.selectors.recipients import customer_recipient_identity
from tickets.services.events import event_record
from tickets.types import Actor

logger = logging.getLogger(__name__)

# Purposes that can wait for the morning. An outage notice or a notice about the customer's own ticket cannot.
QUIET_HOURS_PURPOSES = frozenset({PURPOSE_SURVEY})
DEFAULT_PREFERENCE = (PREFERRED, LAST_USED)
_ACTOR = Actor.system("outreach")


@dataclass(frozen=True)
class _Choice:
    channel: Channel
    adapter: ChannelAdapter
    identity: CustomerIdentity
    rendered: RenderedMessage


class _CannotUse(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


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
    return _deliver(row)


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
    return _deliver(row)


def outreach_due_deferred_ids(*, limit: int = 500) -> list[int]:
    """Deferred messages whose quiet hours are over, oldest due first (for the beat sweep)."""
    due = OutreachMessage.objects.filter(status=OutreachMessage.Status.DEFERRED, send_after__lte=timezone.now())
    return list(due.order_by("send_after", "pk").values_list("pk", flat=True)[:limit])


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
    return _result(row)


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
    _event(row, TimelineEvent.Type.OUTREACH_DEFERRED, send_after=ends_at.isoformat(), detail=row.detail)
    outreach_id = row.pk
    # Redis redelivers a task not acknowledged within the visibility timeout, and a worker holds an ETA task
    # unacknowledged until it is due: a longer wait is left to beat's sweep rather than queued (and redelivered)
    # hourly. Either way the row lock makes it go once.
    if (ends_at - timezone.now()).total_seconds() < _eta_limit_seconds():
        transaction.on_commit(lambda: tasks.send_deferred.apply_async((outreach_id,), eta=ends_at), robust=True)
    logger.info("outreach.deferred", extra={"outreach_id": row.pk, "customer_id": row.customer_id})
    return _result(row)


def _eta_limit_seconds() -> float:
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    return options.get("visibility_timeout", 3600) * 0.9


def _deliver(row: OutreachMessage) -> OutreachResult:
    """Pick the first usable channel of the row's preference and send there, or record why none was usable."""
    considered, choice = [], None
    for channel_id, channel in _candidates(row):
        try:
            choice = _choose(row, channel_id=channel_id, channel=channel)
        except _CannotUse as exc:
            considered.append({"channel_id": channel_id, "reason": exc.reason, "detail": exc.detail})
            continue
        considered.append({"channel_id": channel_id, "reason": "", "detail": ""})
        break
    row.considered = considered
    if choice is None:
        return _skip(row)
    return _send(row, choice)


def _candidates(row: OutreachMessage) -> list[tuple[int, Channel | None]]:
    """The distinct channels of the preference, in order, as (id, channel or None when it no longer exists)."""
    customer = row.customer
    ids = []
    for step in row.channel_preference:
        channel_id = {PREFERRED: customer.preferred_channel_id, LAST_USED: customer.last_channel_id}.get(step, step)
        if channel_id is not None and channel_id not in ids:
            ids.append(channel_id)
    channels = Channel.objects.in_bulk(ids)
    return [(channel_id, channels.get(channel_id)) for channel_id in ids]


def _choose(row: OutreachMessage, *, channel_id: int, channel: Channel | None) -> _Choice:
    if channel is None:
        raise _CannotUse("channel_missing", f"Channel {channel_id} no longer exists.")
    if not channel.is_active:
        raise _CannotUse("channel_disabled", f"The channel {channel.name} is disabled.")
    try:
        adapter = adapter_for(channel)
    except AdapterNotFound as exc:
        raise _CannotUse("channel_cannot_send", f"The channel {channel.name} cannot send messages.") from exc
    identity = customer_recipient_identity(customer_id=row.customer_id, channel=channel)
    if identity is None:
        kinds = " or ".join(adapter.recipient_identity_kinds)
        raise _CannotUse("no_identity", f"The customer has no {kinds} to reach them on {channel.name}.")
    reach = adapter.reachability(channel=channel, identity=identity, purpose=row.purpose)
    if not reach.is_reachable:
        raise _CannotUse(reach.reason, reach.detail)
    try:
        rendered = template_render(row.template, message_format=adapter.message_format, values=_values(row))
    except TemplateRenderError as exc:
        raise _CannotUse(exc.code, f"{channel.name}: {exc.detail}") from exc
    return _Choice(channel=channel, adapter=adapter, identity=identity, rendered=rendered)


def _values(row: OutreachMessage) -> dict[str, str]:
    """Every placeholder of the purpose with a value (empty when unknown: a placeholder is never left as typed)."""
    values = dict.fromkeys(PLACEHOLDERS[row.purpose], "")
    name = (row.customer.name or "").strip()
    values.update({"customer.name": name, "customer.first_name": name.split()[0] if name else ""})
    if row.ticket is not None:
        values.update({"ticket.id": str(row.ticket.pk), "ticket.subject": row.ticket.subject})
    values.update(row.context)
    return values


def _send(row: OutreachMessage, choice: _Choice) -> OutreachResult:
    now = timezone.now()
    rendered, metadata = choice.rendered, {"desk_started": True, "outreach": {"id": row.pk, "purpose": row.purpose}}
    text, html = rendered.text, rendered.html
    if choice.adapter.supports_list_unsubscribe:
        url = unsubscribe_url(customer_id=row.customer_id, purpose=row.purpose)
        metadata["list_unsubscribe"] = [url]
        label = CUSTOMER_LABELS[row.purpose]
        text = f"{text}\n\n--\nTo stop receiving {label} by email: {url}"
        if html:
            html += f'<p>To stop receiving {escape(label)} by email, <a href="{escape(url)}">unsubscribe</a>.</p>'
    ticket = _ticket_for(row, choice=choice, now=now)
    message = Message.objects.create(
        ticket=ticket,
        customer_id=row.customer_id,
        channel=choice.channel,
        direction=Message.Direction.OUTBOUND,
        identity=choice.identity,
        subject=(rendered.subject or ticket.subject)[:500],
        text=text,
        html=html,
        idempotency_key=f"outreach-{row.pk}",
        metadata=metadata,
    )
    delivery_create(message=message, channel=choice.channel, recipient=choice.identity.value)
    Ticket.objects.filter(pk=ticket.pk).update(last_message_at=now, version=F("version") + 1)
    row.status = OutreachMessage.Status.SENT
    row.reason, row.detail = "", ""
    row.channel, row.identity, row.message, row.ticket, row.sent_at = (
        choice.channel,
        choice.identity,
        message,
        ticket,
        now,
    )
    row.save()
    _event(row, TimelineEvent.Type.OUTREACH_SENT, channel_id=choice.channel.pk, message_id=message.pk)
    message_created_publish(message=message)
    logger.info(
        "outreach.sent",
        extra={"outreach_id": row.pk, "message_id": message.pk, "channel_id": choice.channel.pk},
    )
    return _result(row)


def _skip(row: OutreachMessage) -> OutreachResult:
    row.status = OutreachMessage.Status.SKIPPED
    if row.considered:
        row.reason = row.considered[0]["reason"]
        row.detail = " ".join(item["detail"] for item in row.considered)
    else:
        row.reason = "no_channel"
        row.detail = "No channel to try: the customer has no preferred or last-used channel, and none was named."
    row.save()
    _event(row, TimelineEvent.Type.OUTREACH_SKIPPED, reason=row.reason, detail=row.detail)
    logger.info("outreach.skipped", extra={"outreach_id": row.pk, "reason": row.reason})
    return _result(row)


def _ticket_for(row: OutreachMessage, *, choice: _Choice, now) -> Ticket:
    """The ticket the message goes on: the caller's, while it can take messages; else a desk-started one."""
    given = row.ticket
    if given is not None and given.status != Ticket.Status.CLOSED and given.merged_into_id is None:
        return given
    ticket = Ticket.objects.create(
        customer_id=row.customer_id,
        subject=(choice.rendered.subject or row.template.name)[:500],
        channel=choice.channel,
        status=Ticket.Status.SOLVED,
        solved_at=now,
        last_message_at=now,
        follow_up_of=given,
    )
    event_record(
        customer_id=row.customer_id,
        ticket_id=ticket.pk,
        type=TimelineEvent.Type.TICKET_CREATED,
        actor=_ACTOR,
        params={"desk_started": True, "purpose": row.purpose, "outreach_id": row.pk, "status": ticket.status},
    )
    return ticket


def _event(row: OutreachMessage, type: str, **params) -> None:
    event_record(
        customer_id=row.customer_id,
        ticket_id=row.ticket_id,
        type=type,
        actor=_ACTOR,
        params={"outreach_id": row.pk, "purpose": row.purpose, "template": row.template.name, **params},
    )


def _result(row: OutreachMessage) -> OutreachResult:
    return OutreachResult(
        outreach_id=row.pk,
        status=row.status,
        reason=row.reason,
        detail=row.detail,
        channel_id=row.channel_id,
        message_id=row.message_id,
        ticket_id=row.ticket_id,
        send_after=row.send_after,
    )
