"""Writes for agents, teams and tokens."""

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from agents.models import AgentProfile, ApiToken, Team

TOKEN_PREFIX = "hd_"  # noqa: S105 (a label, not a secret)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown to the caller once; never stored


@transaction.atomic
def api_token_create(*, name: str, scopes: list[str], user=None, channel=None) -> IssuedToken:
    unknown = set(scopes) - set(ApiToken.Scope.values)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        prefix=secret[:10],
        digest=token_digest(secret),
        user=user,
        channel=channel,
        scopes=sorted(set(scopes)),
    )
    return IssuedToken(token=token, secret=secret)


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


@transaction.atomic
def agent_create(
    *,
    username: str,
    password: str | None,
    email: str = "",
    display_name: str = "",
    role: str = AgentProfile.Role.AGENT,
    teams: list[Team] | tuple = (),
):
    user_model = get_user_model()
    user = user_model.objects.create_user(username=username, email=email, password=password)
    if role == AgentProfile.Role.ADMIN:
        # Admins also manage the Django admin.
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    profile = AgentProfile.objects.create(user=user, role=role, display_name=display_name or username)
    if teams:
        profile.teams.set(teams)
    return user


def team_create(*, name: str, description: str = "") -> Team:
    team, _ = Team.objects.get_or_create(name=name, defaults={"description": description})
    return team
