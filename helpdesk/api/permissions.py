"""Who may call what: agents, admins, and integration tokens by scope and channel."""

from rest_framework.permissions import BasePermission

from agents.models import ApiToken
from agents.selectors import user_is_admin, user_is_agent
from channels_app.models import Channel
from helpdesk.errors import NotFound


class IsAgent(BasePermission):
    message = "Only agents may do this."

    def has_permission(self, request, view):
        return user_is_agent(request.user)


class IsAdmin(BasePermission):
    message = "Only administrators may do this."

    def has_permission(self, request, view):
        return user_is_admin(request.user)


def _integration_token(request) -> ApiToken | None:
    token = request.auth
    if isinstance(token, ApiToken) and token.user_id is None and token.is_active:
        return token
    return None


class _TokenScope(BasePermission):
    scope: str = ""

    def has_permission(self, request, view):
        token = _integration_token(request)
        if token is None:
            return False
        if not token.has_scope(self.scope):
            self.message = f"This token lacks the '{self.scope}' scope."
            return False
        return True


class CanReadCustomers(_TokenScope):
    scope = ApiToken.Scope.CUSTOMERS_READ


class CanWriteCustomers(_TokenScope):
    scope = ApiToken.Scope.CUSTOMERS_WRITE


class CanPostChannelMessages(_TokenScope):
    """An integration token with ``messages:write`` for exactly the channel in the URL."""

    scope = ApiToken.Scope.MESSAGES_WRITE

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        token = _integration_token(request)
        channel_id = view.kwargs.get("channel_id")
        if str(token.channel_id) != str(channel_id):
            # An authenticated caller learns that an id names no channel (the issue asks for 404 there);
            # channel ids are not secrets, and nothing about existing channels is revealed beyond that.
            if not Channel.objects.filter(pk=channel_id).exists():
                raise NotFound("No such channel.")
            self.message = "This token may not post to this channel."
            return False
        return True
