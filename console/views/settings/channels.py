"""Channels: list, create and edit by kind (email, SMS, chat), and a connection test per channel."""

from django.contrib import messages
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from channels_app.models import Channel
from channels_app.selectors import channel_get, channel_get_for_update, channel_list_with_poll_state
from channels_app.services.channels import channel_create, channel_update
from console.forms.settings import CHANNEL_FORMS, ChannelForm, EmailTestForm, add_domain_error
from console.views.access import admin_required
from console.views.settings import checks
from helpdesk.errors import Conflict, DomainError

STALE = "This channel was changed by someone else after you opened the form. Its current settings are shown below."


@require_GET
@admin_required
def channel_list_view(request):
    return render(
        request,
        "console/settings/channels.html",
        {"nav": "settings", "section": "channels", "channels": channel_list_with_poll_state(), "kinds": CHANNEL_FORMS},
    )


@require_http_methods(["GET", "POST"])
@admin_required
def channel_create_view(request, kind: str):
    form_class = CHANNEL_FORMS.get(kind)
    if form_class is None:
        raise Http404("No console form for this kind of channel.")
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            channel = channel_create(
                kind=kind, name=form.cleaned_data["name"], secrets=form.secrets_changes(), **form.service_arguments()
            )
        except DomainError as exc:
            add_domain_error(form, exc, fields=form.error_fields)
        else:
            messages.success(request, f"Channel {channel.name} created.")
            return redirect("console:settings-channel-edit", channel_id=channel.pk)
    return _channel_form_page(request, form=form, channel=None, kind=kind)


@require_http_methods(["GET", "POST"])
@admin_required
def channel_edit_view(request, channel_id: int):
    channel = channel_get(channel_id=channel_id)
    form_class = CHANNEL_FORMS.get(channel.kind)
    if form_class is None:
        raise Http404("This kind of channel is configured in the Django admin.")
    form = form_class(request.POST or None, channel=channel)
    if request.method == "POST" and form.is_valid():
        try:
            channel = _channel_save(channel=channel, form=form)
        except Conflict as exc:
            if exc.code != "stale":
                add_domain_error(form, exc, fields=form.error_fields)
                return _channel_form_page(request, form=form, channel=channel, kind=channel.kind)
            # The current values, and the admin's own typing lost to nothing: they see both and save again.
            channel = channel_get(channel_id=channel_id)
            fresh = form_class(channel=channel)
            return _channel_form_page(request, form=fresh, channel=channel, kind=channel.kind, stale=STALE, status=409)
        except DomainError as exc:
            add_domain_error(form, exc, fields=form.error_fields)
        else:
            messages.success(request, f"Channel {channel.name} saved.")
            return redirect("console:settings-channel-edit", channel_id=channel.pk)
    return _channel_form_page(request, form=form, channel=channel, kind=channel.kind)


def _channel_save(*, channel: Channel, form: ChannelForm) -> Channel:
    """Save unless the channel changed since the form was filled in (its ``updated_at``), under the row's lock so
    two admins saving at once cannot both pass the check."""
    expected = form.cleaned_data.get("updated_at") or ""
    with transaction.atomic():
        current = channel_get_for_update(channel_id=channel.pk)
        if expected and current.updated_at.isoformat() != expected:
            raise Conflict(STALE, code="stale")
        # The form's settings were merged over the settings it was built with; merge over the locked row's.
        form.channel = current
        return channel_update(
            channel=current, name=form.cleaned_data["name"], secrets=form.secrets_changes(), **form.service_arguments()
        )


def _channel_form_page(request, *, form, channel, kind, stale: str = "", status: int | None = None):
    if status is None:
        status = 400 if request.method == "POST" else 200
    return render(
        request,
        "console/settings/channel_form.html",
        {
            "nav": "settings",
            "section": "channels",
            "form": form,
            "channel": channel,
            "kind": kind,
            "kind_label": Channel.Kind(kind).label,
            "stale": stale,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@admin_required
def channel_test_view(request, channel_id: int):
    """GET shows what can be checked; POST runs the check and shows its outcome (200 whatever the provider said:
    the check ran; 400 only when the form itself was wrong)."""
    channel = channel_get(channel_id=channel_id)
    result = None
    status = 200
    form = None
    if channel.kind == Channel.Kind.EMAIL:
        form = EmailTestForm(request.POST or None, initial={"check": "imap"})
        if request.method == "POST":
            if form.is_valid():
                if form.cleaned_data["check"] == "imap":
                    result = checks.imap_check(channel=channel)
                else:
                    result = checks.smtp_check(channel=channel, recipient=form.cleaned_data["recipient"])
            else:
                status = 400
    elif channel.kind == Channel.Kind.SMS:
        form = checks.SmsCheckForm(request.POST or None, channel=channel)
        if request.method == "POST":
            if form.is_valid():
                result = checks.sms_check(channel=channel, test_number=form.cleaned_data["test_number"])
            else:
                status = 400
    elif channel.kind == Channel.Kind.CHAT:
        result = checks.chat_check(channel=channel)
    context = {
        "nav": "settings",
        "section": "channels",
        "channel": channel,
        "form": form,
        "result": result,
        "embed_snippet": checks.chat_embed_snippet(channel=channel) if channel.kind == Channel.Kind.CHAT else "",
    }
    return render(request, "console/settings/channel_test.html", context, status=status)
