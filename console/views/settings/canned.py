"""Canned responses: list, create, edit, deactivate (never deleted)."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.forms.settings import CannedResponseForm, add_domain_error
from console.views.access import admin_required
from helpdesk.errors import DomainError
from tickets.selectors.canned import canned_response_get, canned_response_list
from tickets.services.canned_admin import (
    PLACEHOLDERS,
    canned_response_create,
    canned_response_deactivate,
    canned_response_update,
)


@require_GET
@admin_required
def canned_list_view(request):
    context = {
        "nav": "settings",
        "section": "canned",
        "responses": canned_response_list(),
        "placeholders": PLACEHOLDERS,
    }
    return render(request, "console/settings/canned.html", context)


@require_http_methods(["GET", "POST"])
@admin_required
def canned_create_view(request):
    form = CannedResponseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            canned = canned_response_create(
                actor=request.user, title=data["title"], body=data["body"], team=data["team"]
            )
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, f"Canned response {canned.title} created.")
            return redirect("console:settings-canned")
    return _canned_page(request, form=form, canned=None)


@require_http_methods(["GET", "POST"])
@admin_required
def canned_edit_view(request, canned_id: int):
    canned = canned_response_get(canned_id=canned_id)
    initial = {"title": canned.title, "body": canned.body, "team": canned.team_id, "is_active": canned.is_active}
    form = CannedResponseForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            canned = canned_response_update(
                actor=request.user,
                canned=canned,
                title=data["title"],
                body=data["body"],
                team=data["team"],
                is_active=data["is_active"],
            )
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, f"Canned response {canned.title} saved.")
            return redirect("console:settings-canned")
    return _canned_page(request, form=form, canned=canned)


def _canned_page(request, *, form, canned):
    status = 400 if request.method == "POST" else 200
    context = {"nav": "settings", "section": "canned", "form": form, "canned": canned, "placeholders": PLACEHOLDERS}
    return render(request, "console/settings/canned_form.html", context, status=status)


@require_POST
@admin_required
def canned_deactivate_view(request, canned_id: int):
    canned = canned_response_get(canned_id=canned_id)
    canned_response_deactivate(actor=request.user, canned=canned)
    messages.success(request, f"Canned response {canned.title} deactivated.")
    return redirect("console:settings-canned")
