"""The ticket page's forms: they check the shape of what was posted; the services decide what is allowed."""

import uuid

from django import forms
from django.conf import settings

from console.forms.fields import AsciiIntegerField
from tickets.models import Ticket

REPLY_STATUS_CHOICES = [
    ("", "Send"),
    (Ticket.Status.PENDING, "Send and mark pending"),
    (Ticket.Status.SOLVED, "Send and mark solved"),
]


class ReplyForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"id": "reply-text", "rows": 6}), required=False)
    channel = forms.TypedChoiceField(coerce=int, choices=(), widget=forms.Select(attrs={"id": "reply-channel"}))
    cc = forms.CharField(required=False, max_length=5000, widget=forms.TextInput(attrs={"id": "reply-cc"}))
    status = forms.ChoiceField(choices=REPLY_STATUS_CHOICES, required=False)
    last_seen_message_id = AsciiIntegerField(min_value=0, widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=100, widget=forms.HiddenInput)
    confirm_stale = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, channel_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = list(channel_choices)
        # Shown next to the file input (it is no Django field: one FileField takes one file).
        self.attachment_errors: list[str] = []

    def clean_text(self):
        text = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("Write a reply first.")
        if len(text) > settings.HELPDESK["MAX_MESSAGE_TEXT_CHARS"]:
            raise forms.ValidationError("The reply is too long.")
        return text

    def clean_cc(self) -> list[str]:
        raw = self.cleaned_data["cc"]
        return [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]

    def is_valid(self) -> bool:
        return super().is_valid() and not self.attachment_errors

    def clean(self):
        # <input type="file" multiple name="attachments">: read here, as Django's FileField takes one file.
        cleaned = super().clean()
        files = self.files.getlist("attachments") if self.files else []
        limits = settings.HELPDESK
        for upload in files:
            if upload.size > limits["MAX_ATTACHMENT_BYTES"]:
                self.attachment_errors.append(f"{upload.name} is larger than {_size(limits['MAX_ATTACHMENT_BYTES'])}.")
        if sum(upload.size for upload in files) > limits["MAX_ATTACHMENTS_TOTAL_BYTES"]:
            self.attachment_errors.append(
                f"The attachments together are larger than {_size(limits['MAX_ATTACHMENTS_TOTAL_BYTES'])}."
            )

        cleaned["attachments"] = files
        return cleaned


class NoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"id": "note-text", "rows": 3}), max_length=100_000)
    idempotency_key = forms.CharField(max_length=100, widget=forms.HiddenInput)

    def clean_text(self):
        text = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("Write a note first.")
        return text


class TicketUpdateForm(forms.Form):
    assignee = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, choices=())
    team = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, choices=())
    status = forms.ChoiceField(choices=Ticket.Status.choices)
    priority = forms.ChoiceField(choices=Ticket.Priority.choices)
    tags = forms.CharField(required=False, max_length=2000)
    version = AsciiIntegerField(min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, agents=(), teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Unassigned"), *agents]
        self.fields["team"].choices = [("", "No team"), *teams]

    def clean_tags(self) -> list[str]:
        names = [name.strip() for name in self.cleaned_data["tags"].split(",") if name.strip()]
        too_long = [name for name in names if len(name) > 50]
        if too_long:
            raise forms.ValidationError(f"A tag has at most 50 characters ({too_long[0][:60]!r}).")
        return names


class MergeForm(forms.Form):
    target = AsciiIntegerField(min_value=1)
    confirm_other_customer = forms.BooleanField(required=False, widget=forms.HiddenInput)


def _size(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


def new_idempotency_key() -> str:
    """One per rendered form: a double submit of the same form sends once."""
    return uuid.uuid4().hex
