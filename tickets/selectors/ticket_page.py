"""Everything the console's ticket page shows, read in a fixed number of queries whatever the customer's history.

The timeline is one page of ``customer_timeline`` (keyset-paginated); every other list is bounded by a limit, and
names referenced by timeline events (agents, teams) are read in one query for the whole page.
"""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Max, Q

from agents.models import Team
from agents.selectors import agent_team_ids
from channels_app.adapters.base import PURPOSE_NOTICE, REACHABLE, ChannelAdapter, Reachability
from channels_app.adapters.registry import AdapterNotFound, adapter_for
from channels_app.models import Channel
from customers.models import ContextEvent, Customer
from tickets.models import CannedResponse, Message, Ticket
from tickets.selectors.tickets import ticket_visibility_q
from tickets.selectors.timeline import TimelinePage, customer_timeline
from tickets.services.canned import canned_placeholder_values, canned_text_render
from tickets.services.replies import reply_channel_default
from timeline.models import TimelineEvent

TIMELINE_PAGE_SIZE = 50
CONTEXT_EVENTS_SHOWN = 10
OTHER_TICKETS_SHOWN = 20
CANNED_RESPONSES_SHOWN = 200
AGENTS_SHOWN = 500
# The reason code an SMS adapter's reachability gives for a customer who texted STOP (``Reachability.reason``).
SMS_OPTED_OUT = "sms_opted_out"


@dataclass(frozen=True)
class ReplyChannel:
    channel: Channel
    is_default: bool
    # Whether a message the desk starts would reach the customer here now, as the channel's adapter answers
    # (``reachability`` for a notice): an SMS opt-out, a chat visitor who is not connected.
    reach: Reachability = REACHABLE

    @property
    def visitor_is_online(self) -> bool:
        # What the reply form shows on a chat channel: "customer is online".
        return self.reach.is_reachable


@dataclass(frozen=True)
class CannedOption:
    id: int
    title: str
    text: str  # the body with this ticket's placeholders filled in


@dataclass(frozen=True)
class TicketPage:
    ticket: Ticket
    customer: Customer
    timeline: TimelinePage
    context_events: list[ContextEvent]
    other_tickets: list[Ticket]
    reply_channels: list[ReplyChannel]
    canned: list[CannedOption]
    agents: list
    teams: list[Team]
    last_message_id: int
    sms_opted_out: bool
    # user id -> name and team id -> name, for timeline events that mention them by id.
    user_names: dict[int, str] = field(default_factory=dict)
    team_names: dict[int, str] = field(default_factory=dict)


def ticket_page(*, user, ticket: Ticket) -> TicketPage:
    """``ticket`` comes from ``ticket_get_for_agent`` (visible to ``user``, with its customer loaded)."""
    customer = ticket.customer
    identities = list(customer.identities.order_by("kind", "-is_primary", "pk"))
    customer._prefetched_objects_cache = {"identities": identities}
    timeline = customer_timeline(customer=customer, viewer=user, limit=TIMELINE_PAGE_SIZE)
    context_events = list(customer.context_events.order_by("-occurred_at", "-id")[:CONTEXT_EVENTS_SHOWN])
    other_tickets = list(
        Ticket.objects.filter(ticket_visibility_q(user=user), customer=customer, merged_into__isnull=True)
        .exclude(pk=ticket.pk)
        .select_related("assignee__agent_profile")
        .order_by("-last_message_at", "-id")[:OTHER_TICKETS_SHOWN]
    )
    agents = list(
        get_user_model()
        .objects.filter(is_active=True, agent_profile__isnull=False)
        .select_related("agent_profile")
        .order_by("agent_profile__display_name", "username")[:AGENTS_SHOWN]
    )
    teams = list(Team.objects.order_by("name"))
    last_message_id = Message.objects.filter(ticket=ticket).aggregate(last=Max("pk"))["last"] or 0
    options = reply_channels(ticket=ticket, identities=identities)
    user_names = {a.pk: _agent_name(a) for a in agents}
    user_names.update(_missing_user_names(timeline, known=user_names))
    return TicketPage(
        ticket=ticket,
        customer=customer,
        timeline=timeline,
        context_events=context_events,
        other_tickets=other_tickets,
        reply_channels=options,
        canned=canned_options(user=user, ticket=ticket),
        agents=agents,
        teams=teams,
        last_message_id=last_message_id,
        sms_opted_out=any(option.reach.reason == SMS_OPTED_OUT for option in options),
        user_names=user_names,
        team_names={t.pk: t.name for t in teams},
    )


@dataclass(frozen=True)
class TimelineSlice:
    timeline: TimelinePage
    user_names: dict[int, str]
    team_names: dict[int, str]


def ticket_timeline_page(*, user, ticket: Ticket, cursor: str | None) -> TimelineSlice:
    """A further ("Load earlier") page of the customer's timeline as ``user`` may see it, with the names its
    events refer to."""
    timeline = customer_timeline(customer=ticket.customer, viewer=user, cursor=cursor, limit=TIMELINE_PAGE_SIZE)
    agents = (
        get_user_model().objects.filter(is_active=True, agent_profile__isnull=False).select_related("agent_profile")
    )
    user_names = {a.pk: _agent_name(a) for a in agents[:AGENTS_SHOWN]}
    user_names.update(_missing_user_names(timeline, known=user_names))
    return TimelineSlice(
        timeline=timeline, user_names=user_names, team_names=dict(Team.objects.values_list("pk", "name"))
    )


def reply_channels(*, ticket: Ticket, identities) -> list[ReplyChannel]:
    """The active channels whose adapter can address one of the customer's identities, the default first, each
    with whether a message would reach the customer there now (one ``reachability_batch`` per adapter, so the
    queries are bounded by the adapters installed, not by the channels)."""
    kinds = {identity.kind for identity in identities}
    default = reply_channel_default(ticket=ticket)
    found: list[tuple[Channel, ChannelAdapter]] = []
    for channel in Channel.objects.filter(is_active=True).order_by("kind", "name", "pk"):
        try:
            adapter = adapter_for(channel)
        except AdapterNotFound:
            continue
        if kinds & set(adapter.recipient_identity_kinds):
            found.append((channel, adapter))
    if default is not None and default.pk not in {c.pk for c, _ in found}:
        found.insert(0, (default, adapter_for(default)))
    reach = _reachability(found, customer_id=ticket.customer_id, identities=identities)
    result = [
        ReplyChannel(channel=c, is_default=default is not None and c.pk == default.pk, reach=reach[c.pk])
        for c, _ in found
    ]
    result.sort(key=lambda option: not option.is_default)
    return result


def _reachability(found: list[tuple[Channel, ChannelAdapter]], *, customer_id: int, identities) -> dict:
    by_adapter: dict[int, tuple[ChannelAdapter, list[Channel]]] = {}
    for channel, adapter in found:
        by_adapter.setdefault(id(adapter), (adapter, []))[1].append(channel)
    reach: dict[int, Reachability] = {}
    for adapter, channels in by_adapter.values():
        reach.update(
            adapter.reachability_batch(
                channels=channels, customer_id=customer_id, identities=identities, purpose=PURPOSE_NOTICE
            )
        )
    return reach


def canned_options(*, user, ticket: Ticket) -> list[CannedOption]:
    """Active canned responses of the agent's teams and the global ones, filled in for ``ticket``."""
    responses = CannedResponse.objects.filter(is_active=True).filter(
        Q(team__isnull=True) | Q(team_id__in=agent_team_ids(user))
    )
    values = canned_placeholder_values(ticket=ticket, agent=user)
    return [
        CannedOption(id=c.pk, title=c.title, text=canned_text_render(c.body, values=values))
        for c in responses.order_by("title", "pk")[:CANNED_RESPONSES_SHOWN]
    ]


def canned_get_for_agent(*, user, canned_id: int) -> CannedResponse | None:
    return (
        CannedResponse.objects.filter(is_active=True, pk=canned_id)
        .filter(Q(team__isnull=True) | Q(team_id__in=agent_team_ids(user)))
        .first()
    )


def _agent_name(user) -> str:
    profile = getattr(user, "agent_profile", None)
    return (getattr(profile, "display_name", "") or "") or user.get_username()


def _missing_user_names(timeline: TimelinePage, *, known: dict[int, str]) -> dict[int, str]:
    """Names of agents named by id in the page's events but not among the active agents (one query at most)."""
    wanted = set()
    for entry in timeline.entries:
        if entry.kind == "event":
            params = entry.item.params or {}
            for key in ("from", "to", "user_id"):
                if entry.item.type in (TimelineEvent.Type.ASSIGNED, TimelineEvent.Type.AGENT_MENTIONED) and isinstance(
                    params.get(key), int
                ):
                    wanted.add(params[key])
    wanted -= known.keys()
    if not wanted:
        return {}
    users = get_user_model().objects.filter(pk__in=wanted).select_related("agent_profile")
    return {u.pk: _agent_name(u) for u in users}
