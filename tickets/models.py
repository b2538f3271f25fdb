from django.conf import settings
from django.db import models
from django.db.models import Q


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        PENDING = "pending", "Pending (waiting on customer)"
        ON_HOLD = "on_hold", "On hold (waiting on a third party)"
        SOLVED = "solved", "Solved"
        CLOSED = "closed", "Closed"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    ACTIVE_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)

    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="tickets")
    subject = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.NORMAL)
    team = models.ForeignKey("agents.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="tickets")
    # The channel the ticket started on.
    channel = models.ForeignKey(
        "channels_app.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    # A message that arrived after the reopen window of a solved ticket starts a new ticket linked to the old.
    follow_up_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups"
    )
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Bumped by every change, so that a form or API call made on an older version is refused, not applied.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "-last_message_at", "-id"], name="ticket_queue_idx"),
            models.Index(fields=["customer", "status"], name="ticket_customer_status_idx"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status_idx"),
            models.Index(fields=["team", "status"], name="ticket_team_status_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound", "From the customer"
        OUTBOUND = "outbound", "To the customer"
        NOTE = "note", "Internal note"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    # Kept with the message (not only through the ticket) so the customer timeline is one indexed scan.
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="messages")
    channel = models.ForeignKey(
        "channels_app.Channel", null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    direction = models.CharField(max_length=16, choices=Direction.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    # For inbound: the identity it came from; for outbound: the identity it goes to.
    identity = models.ForeignKey(
        "customers.CustomerIdentity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.CharField(max_length=500, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="Sanitised; safe to render.")
    provider_id = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=100, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the sender says it was sent.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_id"],
                condition=~Q(provider_id=""),
                name="message_unique_provider_id",
            ),
            models.UniqueConstraint(
                fields=["ticket", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="message_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at", "-id"], name="message_timeline_idx"),
            models.Index(fields=["ticket", "created_at"], name="message_ticket_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} message {self.pk} on #{self.ticket_id}"


def _attachment_path(instance, filename: str) -> str:
    return f"attachments/{instance.sha256[:2]}/{instance.sha256}/{filename}"


class Attachment(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path, max_length=500)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename


class MessageAlias(models.Model):
    """Another id under which one of our sent messages reached its recipient, so answers to it thread.

    Providers such as Amazon SES replace our Message-ID with their own (``<{ses id}@email.amazonses.com>``, with
    regional variants of the domain), and replies then quote only theirs. ``value`` is what the provider reported:
    a full Message-ID in angle brackets, or its bare id, matched against the local part of a quoted id.
    """

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="aliases")
    value = models.CharField(max_length=255, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "value"], name="message_alias_unique")]

    def __str__(self) -> str:
        return f"{self.value} for message {self.message_id}"


class TicketParticipant(models.Model):
    """An email address that took part in a ticket's conversation: the customer, other senders, To and Cc.

    Participants may continue the ticket by its subject reference (``[#123]``); anyone else's subject reference is
    ignored. The role is the one the address had when first seen.
    """

    class Role(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        SENDER = "sender", "Wrote to the ticket"
        TO = "to", "To"
        CC = "cc", "Cc"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="participants")
    email = models.CharField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices)
    first_seen_message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ticket", "email"], name="ticket_participant_unique")]

    def __str__(self) -> str:
        return f"{self.role} on #{self.ticket_id}"


class CannedResponse(models.Model):
    """A saved answer agents insert into a reply. ``body`` may hold placeholders such as ``{{ customer.name }}``
    and ``{{ ticket.id }}``, filled in for the ticket at hand (tickets.services.canned). A team's responses are
    offered to that team's agents; ones with no team to everyone."""

    title = models.CharField(max_length=120)
    body = models.TextField()
    team = models.ForeignKey(
        "agents.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="canned_responses"
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        constraints = [models.UniqueConstraint(fields=["title"], name="canned_response_unique_title")]

    def __str__(self) -> str:
        return self.title
