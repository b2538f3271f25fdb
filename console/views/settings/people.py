"""Teams and agents. Agents are deactivated, never deleted: their messages, notes and events keep their author."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.selectors import (
    agent_profile_get,
    agent_profile_list,
    team_get_with_members,
    team_list_with_members,
    team_version,
)
from agents.services import agent_create, agent_deactivate, agent_reactivate, agent_update, team_add, team_update
from console.forms.settings import AgentCreateForm, AgentEditForm, TeamForm
from console.views.access import admin_required
from helpdesk.errors import Conflict

TEAM_STALE = "This team was changed by someone else after you opened the form. Its current values are shown below."


@require_GET
@admin_required
def team_list_view(request):
    return render(
        request,
        "console/settings/teams.html",
        {"nav": "settings", "section": "teams", "teams": team_list_with_members()},
    )


@require_http_methods(["GET", "POST"])
@admin_required
def team_create_view(request):
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            team = team_add(
                actor=request.user, name=data["name"], description=data["description"], members=list(data["members"])
            )
        except Conflict as exc:
            form.add_error("name", exc.detail)
        else:
            messages.success(request, f"Team {team.name} created.")
            return redirect("console:settings-teams")
    return _team_page(request, form=form, team=None)


@require_http_methods(["GET", "POST"])
@admin_required
def team_edit_view(request, team_id: int):
    team = team_get_with_members(team_id=team_id)
    current_version = team_version(team)
    initial = {
        "name": team.name,
        "description": team.description,
        "members": list(team.agents.all()),
        "version": current_version,
    }
    form = TeamForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if data["version"] and data["version"] != current_version:
            return _team_page(request, form=TeamForm(initial=initial), team=team, stale=TEAM_STALE, status=409)
        try:
            team = team_update(
                actor=request.user,
                team=team,
                name=data["name"],
                description=data["description"],
                members=list(data["members"]),
            )
        except Conflict as exc:
            form.add_error("name", exc.detail)
        else:
            messages.success(request, f"Team {team.name} saved.")
            return redirect("console:settings-teams")
    return _team_page(request, form=form, team=team)


def _team_page(request, *, form, team, stale: str = "", status: int | None = None):
    if status is None:
        status = 400 if request.method == "POST" else 200
    context = {"nav": "settings", "section": "teams", "form": form, "team": team, "stale": stale}
    return render(request, "console/settings/team_form.html", context, status=status)


@require_GET
@admin_required
def agent_list_view(request):
    return render(
        request,
        "console/settings/agents.html",
        {"nav": "settings", "section": "agents", "profiles": agent_profile_list()},
    )


@require_http_methods(["GET", "POST"])
@admin_required
def agent_create_view(request):
    form = AgentCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = agent_create(
            username=data["username"],
            password=data["password"],
            email=data["email"],
            display_name=data["display_name"],
            role=data["role"],
            teams=list(data["teams"]),
        )
        messages.success(request, f"Agent {user.get_username()} created; they sign in with the password you set.")
        return redirect("console:settings-agents")
    return _agent_page(request, form=form, profile=None)


@require_http_methods(["GET", "POST"])
@admin_required
def agent_edit_view(request, user_id: int):
    profile = agent_profile_get(user_id=user_id)
    initial = {
        "email": profile.user.email,
        "display_name": profile.display_name,
        "role": profile.role,
        "teams": list(profile.teams.all()),
    }
    form = AgentEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            agent_update(
                actor=request.user,
                user=profile.user,
                email=data["email"],
                display_name=data["display_name"],
                role=data["role"],
                teams=list(data["teams"]),
            )
        except Conflict as exc:
            form.add_error("role", exc.detail)
        else:
            messages.success(request, f"Agent {profile.user.get_username()} saved.")
            return redirect("console:settings-agents")
    return _agent_page(request, form=form, profile=profile)


def _agent_page(request, *, form, profile):
    status = 400 if request.method == "POST" else 200
    context = {"nav": "settings", "section": "agents", "form": form, "profile": profile}
    return render(request, "console/settings/agent_form.html", context, status=status)


@require_POST
@admin_required
def agent_deactivate_view(request, user_id: int):
    profile = agent_profile_get(user_id=user_id)
    try:
        agent_deactivate(actor=request.user, user=profile.user)
    except Conflict as exc:
        messages.error(request, exc.detail)
        response = redirect("console:settings-agents")
        return response
    messages.success(request, f"Agent {profile.user.get_username()} deactivated; their messages keep their name.")
    return redirect("console:settings-agents")


@require_POST
@admin_required
def agent_reactivate_view(request, user_id: int):
    profile = agent_profile_get(user_id=user_id)
    agent_reactivate(actor=request.user, user=profile.user)
    messages.success(request, f"Agent {profile.user.get_username()} reactivated.")
    return redirect("console:settings-agents")
