from django.core.exceptions import ValidationError
from django.db import models

from channels_app.adapters.base import DESK_STARTED_PURPOSES, PURPOSE_LABELS
from outreach.rendering import template_errors


class OutreachTemplate(models.Model):
    """The words of a message the desk starts, one part per channel format. Placeholders are ``{{ name }}`` from
    the purpose's fixed set (``outreach.rendering.PLACEHOLDERS``); an unknown one is refused when saved."""

    PURPOSE_CHOICES = [(purpose, PURPOSE_LABELS[purpose]) for purpose in DESK_STARTED_PURPOSES]

    name = models.CharField(max_length=120, unique=True)
    purpose = models.CharField(max_length=16, choices=PURPOSE_CHOICES)
    email_subject = models.CharField(max_length=300, blank=True)
    email_text = models.TextField(blank=True, help_text="The plain-text body of the email.")
    email_html = models.TextField(blank=True, help_text="Optional HTML body; sanitised when sent.")
    sms_text = models.TextField(blank=True, help_text="Kept within the SMS segment budget once filled in.")
    chat_text = models.TextField(blank=True, help_text="The card shown in the chat widget.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def clean(self):
        # The renderer validates, so that what a save accepts and what a send renders can never disagree.
        errors = template_errors(self)
        if errors:
            raise ValidationError(errors)


class OutreachMessage(models.Model):
    """One message the desk meant to start, under the caller's unique ``key``: what was decided (sent, skipped,
    deferred to the end of quiet hours), why, and what was sent where."""

    class Status(models.TextChoices):
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not sent"
        DEFERRED = "deferred", "Deferred (quiet hours)"

    key = models.CharField(max_length=200, unique=True, help_text="The caller's idempotency key.")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="outreach_messages")
    purpose = models.CharField(max_length=16)
    template = models.ForeignKey(OutreachTemplate, on_delete=models.PROTECT, related_name="messages")
    # Kept so that a deferred message renders and picks its channel when it is finally sent.
    context = models.JSONField(default=dict, blank=True)
    channel_preference = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=40, blank=True, help_text="Why it was not sent (a stable code).")
    detail = models.TextField(blank=True)
    # Every channel considered, in order: {"channel_id", "reason", "detail"} ("" reason for the one used).
    considered = models.JSONField(default=list, blank=True)
    channel = models.ForeignKey(
        "channels_app.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    identity = models.ForeignKey(
        "customers.CustomerIdentity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.OneToOneField(
        "tickets.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="outreach"
    )
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="outreach_messages"
    )
    send_after = models.DateTimeField(null=True, blank=True, help_text="When a deferred message becomes due.")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="outreach_customer_idx"),
            models.Index(
                fields=["send_after"], condition=models.Q(status="deferred"), name="outreach_deferred_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} to customer {self.customer_id}: {self.status}"
