"""Reads for agents: who is an agent, who is an admin, which teams someone may see."""

import hashlib

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from agents.models import AgentProfile, ApiToken, Team
from agents.services import token_digest
from helpdesk.errors import NotFound


def user_is_agent(user) -> bool:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return bool(getattr(user, "is_superuser", False)) or _profile(user) is not None


def user_is_admin(user) -> bool:
    if not user_is_agent(user):
        return False
    if getattr(user, "is_superuser", False):
        return True
    profile = _profile(user)
    return profile is not None and profile.is_admin


def agent_team_ids(user) -> set[int]:
    profile = _profile(user)
    if profile is None:
        return set()
    cached = getattr(profile, "_team_ids_cache", None)
    if cached is None:
        cached = set(profile.teams.values_list("pk", flat=True))
        profile._team_ids_cache = cached
    return cached


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The active token whose secret is ``raw``, or None. Touches ``last_used_at`` at most once a minute."""
    token = (
        ApiToken.objects.select_related("user", "channel")
        .filter(digest=token_digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def _profile(user) -> AgentProfile | None:
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.agent_profile
    except (AgentProfile.DoesNotExist, AttributeError):
        # AttributeError: an integration client (helpdesk.api.authentication.IntegrationClient) is no user.
        return None


# --- The console's settings pages: each list with its own select/prefetch (a fixed number of queries) ---


def team_list_with_members() -> QuerySet[Team]:
    members = AgentProfile.objects.select_related("user").order_by("user__username")
    return Team.objects.prefetch_related(Prefetch("agents", queryset=members)).order_by("name")


def team_get_with_members(*, team_id: int) -> Team:
    team = team_list_with_members().filter(pk=team_id).first()
    if team is None:
        raise NotFound("No such team.")
    return team


def team_version(team: Team) -> str:
    """A fingerprint of what the team form edits (the model has no version column): a form posted with another
    one was filled in before someone else saved the team."""
    member_ids = sorted(profile.pk for profile in team.agents.all())
    raw = f"{team.name}\x00{team.description}\x00{member_ids}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def agent_profile_list() -> QuerySet[AgentProfile]:
    return (
        AgentProfile.objects.select_related("user")
        .prefetch_related(Prefetch("teams", queryset=Team.objects.order_by("name")))
        .order_by("-user__is_active", "user__username")
    )


def agent_profile_get(*, user_id: int) -> AgentProfile:
    profile = agent_profile_list().filter(user_id=user_id).first()
    if profile is None:
        raise NotFound("No such agent.")
    return profile
