"""Django admin permissions from the agent role.

``agent_create`` makes desk administrators staff so that they manage the Django admin; this backend gives them its
permissions. The role is the one source of truth: an administrator moved back to agent loses them at once, with no
per-model permission rows to keep in step.
"""

from django.contrib.auth.backends import BaseBackend

from agents.selectors import user_is_admin


class AgentRoleBackend(BaseBackend):
    """Authenticates nobody (``ModelBackend`` does); answers permission checks for active administrators."""

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return user_is_admin(user_obj)

    def has_module_perms(self, user_obj, app_label) -> bool:
        return user_is_admin(user_obj)
