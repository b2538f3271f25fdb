"""Reads the agents' websocket consumer needs: who an agent is and what they may see. Consumers call these through
``database_sync_to_async``."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from agents.selectors import agent_team_ids, user_is_admin, user_is_agent


@dataclass(frozen=True)
class AgentViewer:
    """An agent's connection: who, and what they may see. Read when the socket opens and again whenever the
    agent's access changes (``realtime.publish.agent_access_changed_publish``) or the heartbeat comes round."""

    user_id: int
    name: str
    is_admin: bool
    team_ids: frozenset[int]

    def may_see(self, audience: dict | None) -> bool:
        """``tickets.selectors.ticket_visibility_q`` for a ticket's ``{"team_id", "assignee_id"}``; with a
        ``"previous"`` audience (a ticket that moved), also for the agents who could see it before the change."""
        if audience is None or self.is_admin:
            return True
        previous = audience.get("previous")
        return self._may_see_one(audience) or (previous is not None and self._may_see_one(previous))

    def may_see_current(self, audience: dict | None) -> bool:
        """``may_see`` for the ticket as it is now only (not for the agents who could see it before a move)."""
        return audience is None or self.is_admin or self._may_see_one(audience)

    def _may_see_one(self, audience: dict) -> bool:
        team_id = audience.get("team_id")
        return team_id is None or team_id in self.team_ids or audience.get("assignee_id") == self.user_id


def agent_viewer_get(*, user) -> AgentViewer | None:
    """The connecting user as an agent, or None when they are not one (anonymous, inactive, no agent profile)."""
    if not user_is_agent(user):
        return None
    profile = getattr(user, "agent_profile", None)
    return AgentViewer(
        user_id=user.pk,
        name=(profile.display_name if profile else "") or user.get_username(),
        is_admin=user_is_admin(user),
        team_ids=frozenset(agent_team_ids(user)),
    )


@dataclass(frozen=True)
class AgentAccess:
    """What an agent's connection may see now: the user as read from the database (for the ticket selectors) and
    the same as plain values (for filtering pushed events without a query)."""

    user: object
    viewer: AgentViewer


def agent_access_load(*, user_id: int) -> AgentAccess | None:
    """The agent ``user_id`` as they are in the database now, or None when they are no (longer an) active agent.
    Two queries (the user with their profile, their teams); never the copy a connection was opened with."""
    user = get_user_model().objects.select_related("agent_profile").filter(pk=user_id).first()
    viewer = agent_viewer_get(user=user) if user is not None else None
    if viewer is None:
        return None
    return AgentAccess(user=user, viewer=viewer)
