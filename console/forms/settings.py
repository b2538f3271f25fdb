"""Forms of the admins' settings pages. They check what a browser sent and turn it into the services' arguments;
the rules themselves stay in the services (``channel_create``/``channel_update`` and their ``*_clean`` helpers,
``team_add``, ``canned_response_create``...), whose ``DomainError`` the views hand back with ``add_domain_error``.

Secrets are write-only: a secret field is never filled with the stored value, it only says whether one is set, and an
empty field keeps what is stored (so a stale or careless save cannot blank a password)."""

import re

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator

from agents.models import AgentProfile, Team
from channels_app.models import Channel
from channels_app.services.channels import chat_channel_settings_clean, sms_channel_config_clean
from console.forms.fields import AsciiIntegerField
from helpdesk.errors import DomainError
from tickets.services.canned_admin import PLACEHOLDERS

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_DOMAIN_FIELD = re.compile(r"^(?P<path>[a-z_.]+): ")
DAYS = (
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
    ("sat", "Saturday"),
    ("sun", "Sunday"),
)
# Errors whose words name no field but whose code does.
_CODE_FIELDS = {"address_taken": "address", "title_taken": "title", "team_name_taken": "name"}
_RANGE = re.compile(r"^\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")


def add_domain_error(form: forms.Form, error: DomainError, *, fields: dict[str, str] | None = None) -> None:
    """Put a service's error next to the field it names (``"settings.color: ..."`` -> the ``color`` field, or the
    field ``fields`` maps the path to); an error naming no field of the form goes on top of the form."""
    match = _DOMAIN_FIELD.match(error.detail)
    target = _CODE_FIELDS.get(error.code) if _CODE_FIELDS.get(error.code) in form.fields else None
    if match and target is None:
        path = match.group("path")
        mapping = fields or {}
        for candidate in (path, path.removeprefix("settings.")):
            if candidate in mapping:
                target = mapping[candidate]
                break
            if candidate in form.fields:
                target = candidate
                break
        if target is None:
            # "settings.business_hours.days.mon" -> the nearest mapped parent.
            for prefix, field in mapping.items():
                if path.startswith(prefix):
                    target = field
                    break
    # Next to its field the error needs no "settings.color: " to say where it belongs.
    detail = error.detail[match.end() :] if (target and match) else error.detail
    form.add_error(target, detail[:1].upper() + detail[1:])


def _secret_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class ChannelForm(forms.Form):
    """What every channel has. Subclasses add their kind's fields and say how they map to settings and secrets."""

    kind: str = ""
    field_order = ["name", "address"]
    # field name -> secret key in Channel.secrets
    secret_fields: dict[str, str] = {}
    # settings keys this form owns: a blank value removes the key; keys it does not own are kept as they are.
    settings_keys: tuple[str, ...] = ()
    # A service error's path -> the form field it belongs to.
    error_fields: dict[str, str] = {}

    name = forms.CharField(max_length=100)
    default_team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"), required=False, help_text="New tickets from this channel go here."
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    updated_at = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, channel: Channel | None = None, **kwargs):
        self.channel = channel
        if channel is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(channel)
        super().__init__(*args, **kwargs)
        stored = set(channel.secret_names) if channel is not None else set()
        for field_name, secret_key in self.secret_fields.items():
            is_set = secret_key in stored
            self.fields[field_name].help_text = (
                "Currently set. Leave empty to keep it; type a new value to replace it." if is_set else "Not set."
            )
            self.fields[field_name].secret_is_set = is_set

    @classmethod
    def initial_for(cls, channel: Channel) -> dict:
        return {
            "name": channel.name,
            "default_team": channel.default_team_id,
            "is_active": channel.is_active,
            "updated_at": channel.updated_at.isoformat() if channel.updated_at else "",
        }

    def secret_is_stored(self, field_name: str) -> bool:
        return self.channel is not None and self.secret_fields[field_name] in set(self.channel.secret_names)

    def secrets_changes(self) -> dict:
        """Only the secrets the admin typed: the others are not sent, so they stay as stored."""
        return {key: self.cleaned_data[name] for name, key in self.secret_fields.items() if self.cleaned_data.get(name)}

    def settings_values(self) -> dict:
        """This form's settings keys, ``None`` for the ones to remove."""
        raise NotImplementedError

    def merged_settings(self) -> dict:
        merged = dict(self.channel.settings or {}) if self.channel is not None else {}
        for key, value in self.settings_values().items():
            if value is None or value == "" or value == []:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    def address_value(self) -> str:
        return self.cleaned_data.get("address", "") or ""

    def service_arguments(self) -> dict:
        """Keyword arguments for ``channel_create``/``channel_update`` (kind and name excluded)."""
        return {
            "address": self.address_value(),
            "settings": self.merged_settings(),
            "default_team": self.cleaned_data.get("default_team"),
            "is_active": self.cleaned_data.get("is_active", False),
        }


class EmailChannelForm(ChannelForm):
    kind = Channel.Kind.EMAIL
    secret_fields = {"imap_password": "imap_password", "smtp_password": "smtp_password"}
    settings_keys = (
        "imap_host",
        "imap_port",
        "imap_ssl",
        "imap_starttls",
        "imap_username",
        "imap_folder",
        "imap_move_to",
        "smtp_host",
        "smtp_port",
        "smtp_use_tls",
        "smtp_use_ssl",
        "smtp_username",
        "email_backend",
    )
    error_fields = {"address": "address"}
    SECURITY = (("ssl", "TLS (IMAPS/SMTPS)"), ("starttls", "STARTTLS"), ("none", "None (plain text, tests only)"))

    address = forms.EmailField(max_length=320, help_text="The address customers write to.")
    imap_host = forms.CharField(max_length=255, required=False, label="IMAP host", help_text="Empty: no polling.")
    imap_port = AsciiIntegerField(min_value=1, max_value=65535, required=False, label="IMAP port")
    imap_security = forms.ChoiceField(choices=SECURITY, initial="ssl", label="IMAP security")
    imap_username = forms.CharField(max_length=255, required=False, label="IMAP username")
    imap_password = _secret_field("IMAP password")
    imap_folder = forms.CharField(max_length=255, required=False, initial="INBOX", label="IMAP folder")
    imap_move_to = forms.CharField(
        max_length=255, required=False, label="Move fetched mail to", help_text="Empty: mark it read instead."
    )
    smtp_host = forms.CharField(
        max_length=255, required=False, label="SMTP host", help_text="Empty: the site's outgoing mail settings."
    )
    smtp_port = AsciiIntegerField(min_value=1, max_value=65535, required=False, label="SMTP port")
    smtp_security = forms.ChoiceField(choices=SECURITY, initial="starttls", label="SMTP security")
    smtp_username = forms.CharField(max_length=255, required=False, label="SMTP username")
    smtp_password = _secret_field("SMTP password")

    @classmethod
    def initial_for(cls, channel: Channel) -> dict:
        options = channel.settings or {}
        imap_starttls = bool(options.get("imap_starttls", False))
        imap_ssl = bool(options.get("imap_ssl", not imap_starttls))
        return {
            **super().initial_for(channel),
            "address": channel.address,
            "imap_host": options.get("imap_host", ""),
            "imap_port": options.get("imap_port"),
            "imap_security": "ssl" if imap_ssl else "starttls" if imap_starttls else "none",
            "imap_username": options.get("imap_username", ""),
            "imap_folder": options.get("imap_folder") or "INBOX",
            "imap_move_to": options.get("imap_move_to", ""),
            "smtp_host": options.get("smtp_host", ""),
            "smtp_port": options.get("smtp_port"),
            "smtp_security": "ssl"
            if options.get("smtp_use_ssl")
            else "starttls"
            if options.get("smtp_use_tls")
            else "none",
            "smtp_username": options.get("smtp_username", ""),
        }

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("imap_host"):
            if not cleaned.get("imap_username"):
                self.add_error("imap_username", "Required to poll the mailbox.")
            if not cleaned.get("imap_password") and not self.secret_is_stored("imap_password"):
                self.add_error("imap_password", "Required to poll the mailbox.")
            folder = cleaned.get("imap_folder") or "INBOX"
            if cleaned.get("imap_move_to") and cleaned["imap_move_to"] == folder:
                self.add_error("imap_move_to", "Must differ from the folder it polls.")
        return cleaned

    def settings_values(self) -> dict:
        data = self.cleaned_data
        has_imap, has_smtp = bool(data.get("imap_host")), bool(data.get("smtp_host"))
        values = dict.fromkeys(self.settings_keys)
        if has_imap:
            values.update(
                imap_host=data["imap_host"],
                imap_port=data.get("imap_port"),
                imap_ssl=data["imap_security"] == "ssl",
                imap_starttls=data["imap_security"] == "starttls",
                imap_username=data.get("imap_username", ""),
                imap_folder=data.get("imap_folder") or "INBOX",
                imap_move_to=data.get("imap_move_to", ""),
            )
        if has_smtp:
            values.update(
                smtp_host=data["smtp_host"],
                smtp_port=data.get("smtp_port"),
                smtp_use_ssl=data["smtp_security"] == "ssl",
                smtp_use_tls=data["smtp_security"] == "starttls",
                smtp_username=data.get("smtp_username", ""),
                # A channel's own SMTP server only counts with the SMTP backend (the site's may be another one).
                email_backend=SMTP_BACKEND,
            )
        elif self.channel is not None and (self.channel.settings or {}).get("email_backend") not in (
            None,
            SMTP_BACKEND,
        ):
            # A backend set elsewhere (an ESP through anymail) stays when no SMTP host is given here.
            values["email_backend"] = self.channel.settings["email_backend"]
        # False flags are left out rather than stored, like the other blank values.
        return {key: (None if value is False else value) for key, value in values.items()}


class SmsChannelForm(ChannelForm):
    kind = Channel.Kind.SMS
    secret_fields = {"account_sid": "account_sid", "auth_token": "auth_token"}
    settings_keys = ("phone_region", "messaging_service_sid")
    error_fields = {
        "address": "address",
        "settings.phone_region": "phone_region",
        "settings.messaging_service_sid": "messaging_service_sid",
        "settings.numbers": "address",
    }

    address = forms.CharField(
        max_length=32, required=False, label="Number", help_text="E.164, e.g. +14155550100; or a Messaging Service."
    )
    phone_region = forms.CharField(
        max_length=2, required=False, label="Country", help_text="Two letters (US, GB): how local numbers are read."
    )
    messaging_service_sid = forms.CharField(max_length=34, required=False, label="Messaging Service SID")
    account_sid = _secret_field("Twilio Account SID")
    auth_token = _secret_field("Twilio auth token")

    @classmethod
    def initial_for(cls, channel: Channel) -> dict:
        options = channel.settings or {}
        return {
            **super().initial_for(channel),
            "address": channel.address,
            "phone_region": options.get("phone_region", ""),
            "messaging_service_sid": options.get("messaging_service_sid", ""),
        }

    def clean_phone_region(self):
        return self.cleaned_data["phone_region"].strip().upper()

    def clean_account_sid(self):
        value = self.cleaned_data["account_sid"]
        if value and not _ACCOUNT_SID.match(value):
            raise forms.ValidationError("A Twilio Account SID: AC followed by 32 hex digits.")
        return value

    def clean(self):
        cleaned = super().clean()
        for name in self.secret_fields:
            if name not in self.errors and not cleaned.get(name) and not self.secret_is_stored(name):
                self.add_error(name, "Required to send and check messages.")
        if "address" in cleaned and "phone_region" in cleaned and "messaging_service_sid" in cleaned:
            try:
                cleaned["address"], _ = sms_channel_config_clean(
                    address=cleaned["address"], settings=self.merged_settings()
                )
            except DomainError as exc:
                add_domain_error(self, exc, fields=self.error_fields)
        return cleaned

    def settings_values(self) -> dict:
        return {
            "phone_region": self.cleaned_data.get("phone_region", ""),
            "messaging_service_sid": self.cleaned_data.get("messaging_service_sid", ""),
        }

    def service_arguments(self) -> dict:
        return {**super().service_arguments(), "provider": "twilio"}


class ChatChannelForm(ChannelForm):
    kind = Channel.Kind.CHAT
    settings_keys = (
        "allowed_origins",
        "color",
        "greeting",
        "pre_chat_form",
        "expected_reply_minutes",
        "email_channel_id",
        "business_hours",
    )
    error_fields = {
        "settings.allowed_origins": "allowed_origins",
        "settings.color": "color",
        "settings.greeting": "greeting",
        "settings.expected_reply_minutes": "expected_reply_minutes",
        "settings.email_channel_id": "email_channel",
        "settings.business_hours.time_zone": "time_zone",
        "settings.business_hours.days.mon": "hours_mon",
        "settings.business_hours.days.tue": "hours_tue",
        "settings.business_hours.days.wed": "hours_wed",
        "settings.business_hours.days.thu": "hours_thu",
        "settings.business_hours.days.fri": "hours_fri",
        "settings.business_hours.days.sat": "hours_sat",
        "settings.business_hours.days.sun": "hours_sun",
        "settings.business_hours": "time_zone",
    }

    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line, e.g. https://shop.example (scheme and host, no path). The widget works only there.",
    )
    color = forms.CharField(max_length=7, required=False, label="Colour", help_text="#RRGGBB, e.g. #0055ff.")
    greeting = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    pre_chat_form = forms.BooleanField(required=False, label="Ask for name and email before the chat starts")
    expected_reply_minutes = AsciiIntegerField(required=False, min_value=0, label="Expected reply time (minutes)")
    email_channel = forms.ModelChoiceField(
        queryset=Channel.objects.filter(kind=Channel.Kind.EMAIL).order_by("name"),
        required=False,
        label="Email channel for offline follow-up",
    )
    time_zone = forms.CharField(
        max_length=64, required=False, label="Business hours time zone", help_text="e.g. Europe/Paris."
    )
    hours_mon = forms.CharField(required=False, max_length=100, label="Monday")
    hours_tue = forms.CharField(required=False, max_length=100, label="Tuesday")
    hours_wed = forms.CharField(required=False, max_length=100, label="Wednesday")
    hours_thu = forms.CharField(required=False, max_length=100, label="Thursday")
    hours_fri = forms.CharField(required=False, max_length=100, label="Friday")
    hours_sat = forms.CharField(required=False, max_length=100, label="Saturday")
    hours_sun = forms.CharField(required=False, max_length=100, label="Sunday")

    day_fields = tuple(f"hours_{day}" for day, _ in DAYS)

    @classmethod
    def initial_for(cls, channel: Channel) -> dict:
        options = channel.settings or {}
        hours = options.get("business_hours") or {}
        days = hours.get("days") or {}
        return {
            **super().initial_for(channel),
            "allowed_origins": "\n".join(options.get("allowed_origins") or []),
            "color": options.get("color", ""),
            "greeting": options.get("greeting", ""),
            "pre_chat_form": bool(options.get("pre_chat_form", False)),
            "expected_reply_minutes": options.get("expected_reply_minutes"),
            "email_channel": options.get("email_channel_id"),
            "time_zone": hours.get("time_zone", ""),
            **{f"hours_{day}": ", ".join(f"{start}-{end}" for start, end in days.get(day) or []) for day, _ in DAYS},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.day_fields:
            self.fields[name].help_text = "e.g. 09:00-12:00, 13:00-17:00; empty: closed."

    def _day_ranges(self, name: str) -> list[list[str]]:
        value = self.cleaned_data.get(name, "")
        ranges = []
        for part in filter(None, (item.strip() for item in value.split(","))):
            match = _RANGE.match(part)
            if not match:
                raise forms.ValidationError(f"{part!r}: a range like 09:00-17:00.")
            ranges.append([time.zfill(5) for time in match.groups()])
        return ranges

    def clean(self):
        cleaned = super().clean()
        days = {}
        for day, _ in DAYS:
            try:
                ranges = self._day_ranges(f"hours_{day}")
            except forms.ValidationError as exc:
                self.add_error(f"hours_{day}", exc)
                continue
            if ranges:
                days[day] = ranges
        if days and not cleaned.get("time_zone"):
            self.add_error("time_zone", "Required with business hours.")
        cleaned["business_hours"] = {"time_zone": cleaned.get("time_zone"), "days": days} if days else None
        if not self.errors:
            try:
                cleaned["chat_settings"] = chat_channel_settings_clean(settings=self.merged_settings())
            except DomainError as exc:
                add_domain_error(self, exc, fields=self.error_fields)
        return cleaned

    def settings_values(self) -> dict:
        data = self.cleaned_data
        origins = [line.strip() for line in data.get("allowed_origins", "").splitlines() if line.strip()]
        email_channel = data.get("email_channel")
        return {
            "allowed_origins": origins,
            "color": data.get("color", ""),
            "greeting": data.get("greeting", ""),
            "pre_chat_form": True if data.get("pre_chat_form") else None,
            "expected_reply_minutes": data.get("expected_reply_minutes"),
            "email_channel_id": email_channel.pk if email_channel else None,
            "business_hours": data.get("business_hours"),
        }

    def merged_settings(self) -> dict:
        merged = super().merged_settings()
        # An empty list is a setting of its own here: no origin may embed the widget.
        merged.setdefault("allowed_origins", [])
        return merged


CHANNEL_FORMS: dict[str, type[ChannelForm]] = {
    Channel.Kind.EMAIL: EmailChannelForm,
    Channel.Kind.SMS: SmsChannelForm,
    Channel.Kind.CHAT: ChatChannelForm,
}


class EmailTestForm(forms.Form):
    """Which check to run on an email channel; ``recipient`` for the outgoing test message."""

    check = forms.ChoiceField(choices=(("imap", "IMAP login"), ("smtp", "Send a test email")))
    recipient = forms.EmailField(required=False, max_length=320, label="Send the test email to")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("check") == "smtp" and not cleaned.get("recipient") and "recipient" not in self.errors:
            self.add_error("recipient", "Where should the test email go?")
        return cleaned


class _ProfileChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, profile: AgentProfile) -> str:
        label = f"{profile.display_name or profile.user.get_username()} ({profile.user.get_username()})"
        return label if profile.user.is_active else f"{label}, deactivated"


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    members = _ProfileChoice(
        # Deactivated agents too: a save must not drop members only because they are away.
        queryset=AgentProfile.objects.select_related("user").order_by("-user__is_active", "user__username"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_name(self):
        return self.cleaned_data["name"].strip()


_ROLE_HELP = "Administrators also change these settings and use the Django admin."


class AgentCreateForm(forms.Form):
    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = forms.EmailField(required=False, max_length=254)
    display_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=AgentProfile.Role.choices, initial=AgentProfile.Role.AGENT, help_text=_ROLE_HELP)
    teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )
    password = forms.CharField(
        label="Initial password",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Tell it to the agent in person or by phone; they sign in with it.",
    )

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            probe = get_user_model()(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                validate_password(cleaned["password"], user=probe)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class AgentEditForm(forms.Form):
    email = forms.EmailField(required=False, max_length=254)
    display_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=AgentProfile.Role.choices, help_text=_ROLE_HELP)
    teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )


class CannedResponseForm(forms.Form):
    title = forms.CharField(max_length=120)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Placeholders: " + ", ".join(f"{{{{ {name} }}}}" for name in PLACEHOLDERS) + ".",
    )
    team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"),
        required=False,
        empty_label="Everyone",
        help_text="Offered only to this team's agents; empty: to everyone.",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
