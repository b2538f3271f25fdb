from django.conf import settings
from django.db import models


class TimelineEvent(models.Model):
    """A change, recorded as data: what happened, who did it, with which parameters."""

    class Type(models.TextChoices):
        TICKET_CREATED = "ticket_created", "Ticket created"
        STATUS_CHANGED = "status_changed", "Status changed"
        REOPENED = "reopened", "Reopened"
        ASSIGNED = "assigned", "Assigned"
        TEAM_CHANGED = "team_changed", "Team changed"
        PRIORITY_CHANGED = "priority_changed", "Priority changed"
        TAGS_CHANGED = "tags_changed", "Tags changed"
        SUBJECT_CHANGED = "subject_changed", "Subject changed"
        NOTE_ADDED = "note_added", "Note added"
        FOLLOW_UP_CREATED = "follow_up_created", "Follow-up ticket created"
        DELIVERY_FAILED = "delivery_failed", "Delivery failed"
        TICKET_MERGED = "ticket_merged", "Ticket merged"
        CUSTOMER_MERGED = "customer_merged", "Customer merged"
        CUSTOMER_MERGE_UNDONE = "customer_merge_undone", "Customer merge undone"
        AGENT_MENTIONED = "agent_mentioned", "Agent mentioned"
        IDENTITY_ADDED = "identity_added", "Identity added"
        SMS_OPTED_OUT = "sms_opted_out", "Opted out of SMS"
        SMS_OPTED_IN = "sms_opted_in", "Opted back in to SMS"
        OUTREACH_SENT = "outreach_sent", "The desk wrote first"
        OUTREACH_SKIPPED = "outreach_skipped", "A message from the desk was not sent"
        OUTREACH_DEFERRED = "outreach_deferred", "A message from the desk waits for quiet hours to end"
        EMAIL_SUBSCRIPTION_CHANGED = "email_subscription_changed", "Email subscription changed"
        PREFERRED_CHANNEL_CHANGED = "preferred_channel_changed", "Preferred channel changed"

    class ActorKind(models.TextChoices):
        AGENT = "agent", "Agent"
        CUSTOMER = "customer", "Customer"
        SYSTEM = "system", "System"
        INTEGRATION = "integration", "Integration"

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="timeline_events")
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.CASCADE, related_name="timeline_events"
    )
    type = models.CharField(max_length=32, choices=Type.choices)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table and index names it had when it lived in ``tickets``: the move changed no data.
        db_table = "tickets_timelineevent"
        indexes = [
            models.Index(fields=["customer", "-created_at", "-id"], name="timeline_event_customer_idx"),
            models.Index(fields=["ticket", "created_at"], name="timeline_event_ticket_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} on #{self.ticket_id}"
