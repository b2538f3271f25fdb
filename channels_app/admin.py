import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from channels_app.models import Channel, Delivery, DeliveryAttempt, ImapMailboxState, InboundEvent
from channels_app.providers.twilio.outbound import TwilioCheckFailed, twilio_connection_check
from channels_app.selectors import sms_opted_out
from channels_app.services.channels import chat_channel_settings_clean, sms_channel_config_clean
from channels_app.services.deliveries import delivery_retry
from channels_app.services.inbound_receive import inbound_event_retry
from chat.embed import widget_embed_snippet
from customers.identities import normalise_phone
from helpdesk.errors import DomainError


class ChannelAdminForm(forms.ModelForm):
    """Secrets are write-only: the stored values are never put back into the page."""

    new_secrets = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text='JSON object, e.g. {"auth_token": "..."}. Keys given replace stored ones; null removes one. '
        "Leave empty to keep the stored secrets.",
    )

    class Meta:
        model = Channel
        fields = [
            "kind",
            "provider",
            "name",
            "address",
            "settings",
            "default_team",
            "continue_open_ticket",
            "is_active",
        ]

    def clean_new_secrets(self):
        raw = self.cleaned_data["new_secrets"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not JSON: {exc.msg}") from exc
        if not isinstance(value, dict) or not all(isinstance(v, str | type(None)) for v in value.values()):
            raise forms.ValidationError("A JSON object of strings (or null to remove a key).")
        return value

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == Channel.Kind.SMS:
            try:
                cleaned["address"], cleaned["settings"] = sms_channel_config_clean(
                    address=cleaned.get("address", ""), settings=cleaned.get("settings") or {}
                )
            except DomainError as exc:
                raise forms.ValidationError(exc.detail) from exc
        elif cleaned.get("kind") == Channel.Kind.CHAT:
            try:
                cleaned["settings"] = chat_channel_settings_clean(settings=cleaned.get("settings") or {})
            except DomainError as exc:
                raise forms.ValidationError(exc.detail) from exc
        return cleaned

    def save(self, commit=True):
        channel = super().save(commit=False)
        changes = self.cleaned_data.get("new_secrets")
        if changes:
            merged = dict(channel.secrets or {})
            for key, value in changes.items():
                if value in (None, ""):
                    merged.pop(key, None)
                else:
                    merged[key] = value
            channel.secrets = merged
        if commit:
            channel.save()
        return channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = ["name", "kind", "provider", "address", "is_active", "default_team"]
    list_filter = ["kind", "is_active"]
    readonly_fields = ["public_key", "secret_names", "embed_snippet", "created_at", "updated_at"]
    search_fields = ["name", "address"]

    @admin.display(description="Stored secrets")
    def secret_names(self, channel):
        return ", ".join(channel.secret_names) or "—"

    @admin.display(description="Embed snippet")
    def embed_snippet(self, channel):
        if channel.pk is None or channel.kind != Channel.Kind.CHAT:
            return "—"
        return format_html("<pre><code>{}</code></pre>", widget_embed_snippet(channel=channel))

    def get_urls(self):
        check = path(
            "<path:object_id>/sms-check/",
            self.admin_site.admin_view(self.sms_check_view),
            name="channels_app_channel_sms_check",
        )
        return [check, *super().get_urls()]

    def sms_check_view(self, request, object_id):
        """Prove an SMS channel's stored Twilio credentials, and optionally send a test message; the outcome (or
        Twilio's error) comes back as an admin message on the channel's page."""
        channel = get_object_or_404(Channel, pk=object_id, kind=Channel.Kind.SMS)
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        form = SmsCheckForm(request.POST or None, channel=channel)
        if request.method == "POST" and form.is_valid():
            try:
                check = twilio_connection_check(channel=channel, test_recipient=form.cleaned_data["test_number"])
            except TwilioCheckFailed as exc:
                messages.error(request, str(exc))
            else:
                text = f"Connected to the Twilio account {check.account_name!r} ({check.account_status})."
                if check.test_message_sid:
                    text += f" Test message accepted by Twilio as {check.test_message_sid}."
                messages.success(request, text)
            return redirect(reverse("admin:channels_app_channel_change", args=[channel.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "channel": channel,
            "form": form,
            "title": f"Check {channel.name}",
        }
        return TemplateResponse(request, "admin/channels_app/channel/sms_check.html", context)


class SmsCheckForm(forms.Form):
    test_number = forms.CharField(
        required=False,
        max_length=32,
        help_text="Optional: a phone number (E.164, e.g. +14155550100) to send a test message to.",
    )

    def __init__(self, *args, channel: Channel, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel

    def clean_test_number(self):
        value = self.cleaned_data["test_number"].strip()
        if not value:
            return ""
        try:
            number = normalise_phone(value, region=(self.channel.settings or {}).get("phone_region") or None)
        except ValueError as exc:
            raise forms.ValidationError(f"Not a usable phone number: {exc}.") from exc
        if sms_opted_out(phone=number):
            raise forms.ValidationError("This number opted out of SMS (texted STOP); it gets no test message.")
        return number


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "channel", "provider_id", "status", "attempts", "reason_short"]
    list_filter = ["status", "channel"]
    search_fields = ["provider_id", "reason"]
    readonly_fields = [
        "public_id",
        "channel",
        "provider_id",
        "content_type",
        "raw_preview",
        "status",
        "reason",
        "attempts",
        "received_at",
        "processed_at",
        "updated_at",
    ]
    exclude = ["raw"]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Reason")
    def reason_short(self, event):
        return (event.reason or "")[:80]

    @admin.display(description="Raw payload (first 4 KB)")
    def raw_preview(self, event):
        raw = bytes(event.raw or b"")
        return f"{len(raw)} bytes\n\n" + raw[:4096].decode("utf-8", errors="replace")

    @admin.action(description="Process again")
    def retry(self, request, queryset):
        count = sum(inbound_event_retry(event=event) for event in queryset)
        messages.info(request, f"{count} event(s) queued again; processed ones are never re-run.")


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "outcome", "error_code", "error", "started_at", "finished_at"]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "channel", "status", "attempts", "error_code"]
    list_filter = ["status", "channel"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [DeliveryAttemptInline]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Send failed deliveries again")
    def retry(self, request, queryset):
        count = sum(delivery_retry(delivery=delivery) for delivery in queryset)
        messages.info(request, f"{count} delivery(ies) queued again.")


@admin.register(ImapMailboxState)
class ImapMailboxStateAdmin(admin.ModelAdmin):
    """Read-only: the poller owns these rows; a failing mailbox shows here with its last error."""

    list_display = ["channel", "folder", "last_uid", "consecutive_failures", "last_success_at", "last_error_at"]
    list_filter = ["channel"]
    readonly_fields = [f.name for f in ImapMailboxState._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
