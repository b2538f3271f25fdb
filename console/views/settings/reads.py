"""Reads of the settings pages, each with its own select/prefetch so a list page costs the same few queries
whatever the number of rows. (They belong next to the apps' selectors; they live here while those modules are owned
by other work in flight.)"""

import hashlib

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet

from agents.models import AgentProfile, Team
from channels_app.models import Channel
from channels_app.selectors import channel_list
from helpdesk.errors import NotFound
from tickets.models import CannedResponse


def settings_channel_list() -> QuerySet[Channel]:
    # imap_state: the last poll of each mailbox, in the same query (a reverse one-to-one).
    return channel_list().select_related("imap_state")


def settings_channel_get_for_update(*, channel_id: int) -> Channel:
    """The channel row, locked until the caller's transaction ends (for a check-then-save of a stale form)."""
    channel = Channel.objects.select_for_update().filter(pk=channel_id).first()
    if channel is None:
        raise NotFound("No such channel.")
    return channel


def settings_team_list() -> QuerySet[Team]:
    members = AgentProfile.objects.select_related("user").order_by("user__username")
    return Team.objects.prefetch_related(Prefetch("agents", queryset=members)).order_by("name")


def settings_team_get(*, team_id: int) -> Team:
    team = settings_team_list().filter(pk=team_id).first()
    if team is None:
        raise NotFound("No such team.")
    return team


def team_version(team: Team) -> str:
    """A fingerprint of what the team form edits (the model has no version column): a form posted with another
    one was filled in before someone else saved the team."""
    member_ids = sorted(profile.pk for profile in team.agents.all())
    raw = f"{team.name}\x00{team.description}\x00{member_ids}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def settings_agent_list() -> QuerySet[AgentProfile]:
    return (
        AgentProfile.objects.select_related("user")
        .prefetch_related(Prefetch("teams", queryset=Team.objects.order_by("name")))
        .order_by("-user__is_active", "user__username")
    )


def settings_agent_get(*, user_id: int) -> AgentProfile:
    profile = settings_agent_list().filter(user_id=user_id).first()
    if profile is None:
        raise NotFound("No such agent.")
    return profile


def settings_canned_list() -> QuerySet[CannedResponse]:
    return CannedResponse.objects.select_related("team", "created_by").order_by("-is_active", "title", "id")


def settings_canned_get(*, canned_id: int) -> CannedResponse:
    canned = CannedResponse.objects.select_related("team").filter(pk=canned_id).first()
    if canned is None:
        raise NotFound("No such canned response.")
    return canned


def settings_counts() -> dict[str, int]:
    return {
        "channels": Channel.objects.count(),
        "teams": Team.objects.count(),
        "agents": get_user_model().objects.filter(agent_profile__isnull=False, is_active=True).count(),
        "canned": CannedResponse.objects.filter(is_active=True).count(),
    }
