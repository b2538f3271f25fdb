"""Sending one claimed outreach row: the first usable channel of its preference, or the recorded reason none was.

Used by ``outreach_send`` at once and by the deferred send when quiet hours end. A channel is usable when the
customer has an identity its adapter can address, the adapter's ``reachability`` for the purpose says yes, and the
template has a part its ``message_format`` renders within the channel's limits. The message then takes the ordinary
outbound path: a ``Message`` on a ticket and a ``Delivery`` (attempts, retries, status callbacks, bounces).

A message with no ticket opens a desk-started ticket, already solved (so that a thousand outage notices do not
flood the queues): the customer's answer threads onto it like any answer (the email reply token, the threading
rules) and reopens it, as Zendesk's proactive tickets do. ``Message.ticket`` stays required.
"""

import logging
from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone
from django.utils.html import escape

from channels_app.adapters.base import ChannelAdapter
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel
from channels_app.services.deliveries import delivery_create
from customers.models import CustomerIdentity
from outreach.models import OutreachMessage
from outreach.rendering import PLACEHOLDERS, RenderedMessage, TemplateRenderError, template_render
from outreach.types import LAST_USED, PREFERRED, OutreachResult
from outreach.unsubscribe import CUSTOMER_LABELS, unsubscribe_url
from realtime.publish import message_created_publish
from tickets.models import Message, Ticket
from tickets.selectors.recipients import customer_recipient_identity
from timeline.models import TimelineEvent
from timeline.services import event_record
from timeline.types import Actor

logger = logging.getLogger(__name__)

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


def outreach_deliver(*, row: OutreachMessage) -> OutreachResult:
    """Send ``row`` on the first usable channel of its preference, or record why none was usable.

    The caller holds the transaction the row was claimed in (and, for a deferred row, its lock)."""
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
    outreach_event_record(row, TimelineEvent.Type.OUTREACH_SENT, channel_id=choice.channel.pk, message_id=message.pk)
    message_created_publish(message=message)
    logger.info(
        "outreach.sent",
        extra={"outreach_id": row.pk, "message_id": message.pk, "channel_id": choice.channel.pk},
    )
    return outreach_result(row)


def _skip(row: OutreachMessage) -> OutreachResult:
    row.status = OutreachMessage.Status.SKIPPED
    if row.considered:
        row.reason = row.considered[0]["reason"]
        row.detail = " ".join(item["detail"] for item in row.considered)
    else:
        row.reason = "no_channel"
        row.detail = "No channel to try: the customer has no preferred or last-used channel, and none was named."
    row.save()
    outreach_event_record(row, TimelineEvent.Type.OUTREACH_SKIPPED, reason=row.reason, detail=row.detail)
    logger.info("outreach.skipped", extra={"outreach_id": row.pk, "reason": row.reason})
    return outreach_result(row)


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


def outreach_event_record(row: OutreachMessage, type: str, **params) -> None:
    event_record(
        customer_id=row.customer_id,
        ticket_id=row.ticket_id,
        type=type,
        actor=_ACTOR,
        params={"outreach_id": row.pk, "purpose": row.purpose, "template": row.template.name, **params},
    )


def outreach_result(row: OutreachMessage) -> OutreachResult:
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
