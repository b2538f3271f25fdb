"""Who may open console pages: signed-in agents; settings pages only admins.

A signed-in user who is no agent (a customer account, a deactivated agent) gets 403, not a login loop."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404

from agents.selectors import user_is_admin, user_is_agent
from helpdesk.errors import NotFound


def agent_required(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not user_is_agent(request.user):
            raise PermissionDenied("The console is for agents.")
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            # The domain's NotFound (no such object, or one the agent may not see) is a 404 page, never a 403:
            # nothing tells an agent that a ticket of another team exists.
            raise Http404(str(exc)) from exc

    return wrapped


def admin_required(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.user.is_authenticated and user_is_agent(request.user) and not user_is_admin(request.user):
            raise PermissionDenied("Only administrators may change settings.")
        return view(request, *args, **kwargs)

    return agent_required(wrapped)
