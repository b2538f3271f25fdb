"""How the ticket page words timeline events: one readable sentence per event, built from its data.

Sentences are plain text (the template escapes them); names come from the page's lookups, never from a query per
event."""

from tickets.models import Ticket
from timeline.models import TimelineEvent

_STATUS = dict(Ticket.Status.choices)
_PRIORITY = dict(Ticket.Priority.choices)
_CHANNEL_KINDS = {"email", "sms", "chat", "api"}


def event_sentence(event: TimelineEvent, *, user_names: dict, team_names: dict) -> str:
    params = event.params or {}
    who = _actor(event, user_names)
    kind = event.type
    T = TimelineEvent.Type
    if kind == T.TICKET_CREATED and params.get("desk_started"):
        return f"The desk opened ticket #{event.ticket_id} to write to the customer first ({params.get('purpose')})."
    if kind == T.OUTREACH_SENT:
        return f"The desk wrote to the customer first: {params.get('purpose')} “{params.get('template', '')}”."
    if kind == T.OUTREACH_SKIPPED:
        return f"A {params.get('purpose')} “{params.get('template', '')}” was not sent: {params.get('detail', '')}"
    if kind == T.OUTREACH_DEFERRED:
        return f"A {params.get('purpose')} “{params.get('template', '')}” waits: {params.get('detail', '')}"
    if kind == T.EMAIL_SUBSCRIPTION_CHANGED:
        change = "subscribed again to" if params.get("is_subscribed") else "unsubscribed from"
        return f"{who} {change} {params.get('purpose')} emails."
    if kind == T.PREFERRED_CHANNEL_CHANGED:
        return f"{who} set the preferred channel to {params.get('channel') or 'none'}."
    if kind == T.TICKET_CREATED:
        via = f" ({params['channel_kind']})" if params.get("channel_kind") else ""
        return f"Ticket #{event.ticket_id} was created{via}."
    if kind in (T.STATUS_CHANGED, T.REOPENED):
        verb = "reopened the ticket" if kind == T.REOPENED else "changed the status"
        return f"{who} {verb}: {_status(params.get('from'))} → {_status(params.get('to'))}."
    if kind == T.ASSIGNED:
        to = params.get("to")
        reason = " (by replying)" if params.get("reason") == "replied" else ""
        if to is None:
            return f"{who} unassigned the ticket."
        return f"{who} assigned the ticket to {_user(to, user_names)}{reason}."
    if kind == T.TEAM_CHANGED:
        to = params.get("to")
        return f"{who} moved the ticket to team {team_names.get(to, 'no team') if to else 'no team'}."
    if kind == T.PRIORITY_CHANGED:
        before, after = _PRIORITY.get(params.get("from"), params.get("from")), _PRIORITY.get(params.get("to"))
        return f"{who} changed the priority: {before} → {after or params.get('to')}."
    if kind == T.TAGS_CHANGED:
        parts = []
        if params.get("added"):
            parts.append("added " + ", ".join(map(str, params["added"])))
        if params.get("removed"):
            parts.append("removed " + ", ".join(map(str, params["removed"])))
        return f"{who} changed tags: {'; '.join(parts) or 'no change'}."
    if kind == T.SUBJECT_CHANGED:
        return f"{who} changed the subject to “{params.get('to', '')}”."
    if kind == T.NOTE_ADDED:
        return f"{who} added an internal note."
    if kind == T.AGENT_MENTIONED:
        return f"{who} mentioned {_user(params.get('user_id'), user_names)} in a note."
    if kind == T.FOLLOW_UP_CREATED:
        follow_up = params.get("follow_up_ticket_id")
        return f"The customer wrote again after this ticket was solved: follow-up ticket #{follow_up}."
    if kind == T.DELIVERY_FAILED:
        error = params.get("error") or params.get("error_code") or "unknown error"
        return f"A reply could not be delivered ({error})."
    if kind == T.TICKET_MERGED:
        if params.get("role") == "source":
            return f"{who} merged ticket #{params.get('source_id')} into #{params.get('target_id')}."
        return f"{who} merged ticket #{params.get('source_id')} into this ticket (#{params.get('target_id')})."
    if kind == T.CUSTOMER_MERGED:
        return f"{who} merged another customer record into this one."
    if kind == T.CUSTOMER_MERGE_UNDONE:
        return f"{who} undid a customer merge."
    if kind == T.IDENTITY_ADDED:
        return f"A new {str(params.get('kind', 'identity')).replace('_', ' ')} was added to the customer."
    if kind == T.SMS_OPTED_OUT:
        return "The customer opted out of SMS (texted STOP)."
    if kind == T.SMS_OPTED_IN:
        return "The customer opted back in to SMS (texted START)."
    return f"{who}: {event.get_type_display()}."


def _actor(event: TimelineEvent, user_names: dict) -> str:
    if event.actor_kind == TimelineEvent.ActorKind.AGENT and event.actor_id:
        return _user(event.actor_id, user_names, fallback=event.actor)
    if event.actor_kind == TimelineEvent.ActorKind.CUSTOMER:
        return "The customer"
    if event.actor_kind == TimelineEvent.ActorKind.INTEGRATION:
        return (event.params or {}).get("actor_label") or "An integration"
    return "The system"


def _user(user_id, user_names: dict, fallback=None) -> str:
    if user_id in user_names:
        return user_names[user_id]
    if fallback is not None:
        return fallback.get_username()
    return f"agent #{user_id}" if user_id else "nobody"


def _status(value) -> str:
    return str(_STATUS.get(value, value or "none")).split(" (")[0].lower()


def message_channel_kind(message) -> str:
    """What the timeline marks a message with: its channel's kind, or ``note`` for an internal note."""
    if message.direction == "note":
        return "note"
    kind = message.channel.kind if message.channel_id else "api"
    return kind if kind in _CHANNEL_KINDS else "api"
