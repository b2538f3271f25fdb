"""Writes for agents, teams and tokens.

Whatever changes what an agent may see (deactivation, role, teams, a team's members) tells the agent's open
websocket connections on commit (``agent_access_changed_publish``): they read the access again at once and close or
leave what the agent may no longer see, instead of keeping what they were given when they opened."""

import hashlib
import logging
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import AgentProfile, ApiToken, Team
from helpdesk.errors import Conflict, DomainError
from realtime.publish import agent_access_changed_publish

logger = logging.getLogger(__name__)

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


@transaction.atomic
def team_add(*, actor, name: str, description: str = "", members: list[AgentProfile] | tuple = ()) -> Team:
    """A new team with exactly ``members``. ``Conflict(code="team_name_taken")`` when a team already has the name
    (compared case-insensitively: "Billing" and "billing" would look the same in every menu). Unlike
    ``team_create`` (the API's, which hands back the existing team), this never touches an existing team."""
    name = name.strip()
    if Team.objects.filter(name__iexact=name).exists():
        raise Conflict("A team with this name already exists.", code="team_name_taken")
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name, description=description)
    except IntegrityError as exc:
        raise Conflict("A team with this name already exists.", code="team_name_taken") from exc
    team.agents.set(members)
    agent_access_changed_publish(user_ids=[profile.user_id for profile in members])
    logger.info("agents.team_added", extra={"team_id": team.pk, "actor_id": _actor_id(actor)})
    return team


@transaction.atomic
def team_update(*, actor, team: Team, name: str, description: str, members: list[AgentProfile] | tuple) -> Team:
    """Rename a team, change its description and set its members to exactly ``members`` (the row is locked, so two
    admins saving at once apply one after the other). ``Conflict(code="team_name_taken")`` on a duplicate name."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    members_before = set(team.agents.values_list("user_id", flat=True))
    name = name.strip()
    if Team.objects.filter(name__iexact=name).exclude(pk=team.pk).exists():
        raise Conflict("A team with this name already exists.", code="team_name_taken")
    team.name, team.description = name, description
    try:
        with transaction.atomic():
            team.save(update_fields=["name", "description"])
    except IntegrityError as exc:
        raise Conflict("A team with this name already exists.", code="team_name_taken") from exc
    team.agents.set(members)
    agent_access_changed_publish(user_ids=members_before ^ {profile.user_id for profile in members})
    logger.info("agents.team_updated", extra={"team_id": team.pk, "actor_id": _actor_id(actor)})
    return team


def _active_admin_ids() -> set[int]:
    """Users who can administer the desk now: active, and an admin profile or a superuser. Their profiles are locked
    (the caller is in a transaction), so two admins demoting each other at once cannot leave the desk with none."""
    locked = list(
        AgentProfile.objects.select_for_update()
        .filter(role=AgentProfile.Role.ADMIN, user__is_active=True)
        .values_list("user_id", flat=True)
    )
    superusers = get_user_model().objects.filter(is_superuser=True, is_active=True).values_list("pk", flat=True)
    return set(locked) | set(superusers)


@transaction.atomic
def agent_update(*, actor, user, email: str, display_name: str, role: str, teams: list[Team] | tuple):
    """Change an agent's email, display name, role and teams. ``Conflict(code="last_admin")`` when it would demote
    the last active administrator (nobody could then manage the desk)."""
    if role not in AgentProfile.Role.values:
        raise DomainError(f"Unknown role {role!r}.", code="invalid_role")
    profile = AgentProfile.objects.select_for_update().select_related("user").get(user_id=user.pk)
    user = profile.user
    is_demotion = profile.role == AgentProfile.Role.ADMIN and role != AgentProfile.Role.ADMIN
    if is_demotion and not _active_admin_ids() - {user.pk}:
        raise Conflict("This is the last administrator; make someone else an administrator first.", code="last_admin")
    user.email = email
    # Admins also manage the Django admin; a demoted one loses it (a superuser keeps it: that is set elsewhere).
    user.is_staff = role == AgentProfile.Role.ADMIN or user.is_superuser
    user.save(update_fields=["email", "is_staff"])
    profile.display_name = display_name or user.get_username()
    profile.role = role
    profile.save(update_fields=["display_name", "role"])
    profile.teams.set(teams)
    agent_access_changed_publish(user_ids=[user.pk])
    logger.info("agents.agent_updated", extra={"user_id": user.pk, "actor_id": _actor_id(actor)})
    return user


@transaction.atomic
def agent_deactivate(*, actor, user) -> None:
    """Stop an agent from signing in. Never a delete: their messages, notes and timeline events keep their author.
    ``Conflict`` when the actor deactivates themselves (``self_deactivation``) or the last active administrator
    (``last_admin``)."""
    if actor is not None and actor.pk == user.pk:
        raise Conflict("You cannot deactivate yourself.", code="self_deactivation")
    admin_ids = _active_admin_ids()
    if user.pk in admin_ids and not admin_ids - {user.pk}:
        raise Conflict("This is the last administrator; it stays active.", code="last_admin")
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    agent_access_changed_publish(user_ids=[user.pk])
    logger.info("agents.agent_deactivated", extra={"user_id": user.pk, "actor_id": _actor_id(actor)})


@transaction.atomic
def agent_reactivate(*, actor, user) -> None:
    get_user_model().objects.filter(pk=user.pk).update(is_active=True)
    logger.info("agents.agent_reactivated", extra={"user_id": user.pk, "actor_id": _actor_id(actor)})


def _actor_id(actor) -> int | None:
    return getattr(actor, "pk", None)
