"""Reads for agents: who is an agent, who is an admin, which teams someone may see."""

from django.utils import timezone

from agents.models import AgentProfile, ApiToken
from agents.services import token_digest


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
