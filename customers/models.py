import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Customer(models.Model):
    """A person the desk talks to, whichever channels they use. Identities say how to recognise them."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, blank=True)
    locale = models.CharField(max_length=35, blank=True, help_text="BCP 47 language tag, e.g. en-GB.")
    time_zone = models.CharField(max_length=64, blank=True, help_text="IANA name, e.g. Europe/Paris.")
    company = models.CharField(max_length=200, blank=True)
    plan = models.CharField(max_length=100, blank=True, help_text="Plan or tier, e.g. enterprise.")
    lifetime_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text="Free custom attributes.")
    # The channel the customer last wrote on: replies default to it.
    last_channel = models.ForeignKey(
        "channels_app.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Where the desk writes first (notices, outage notifications, surveys) when the caller asks for the customer's
    # preference; agents set it on the profile.
    preferred_channel = models.ForeignKey(
        "channels_app.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A merged customer keeps its row so old references resolve; everything it had moved to merged_into.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["-updated_at"], name="customer_recent_idx"),
            # The console's customer list: most recent activity first, merged customers left out, keyset pages.
            models.Index(
                fields=["-updated_at", "-id"], condition=Q(merged_into__isnull=True), name="customer_activity_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"Customer {self.pk}"


class CustomerIdentity(models.Model):
    """One way to recognise a customer. A value is unique per kind across all customers."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email address"
        PHONE = "phone", "Phone number (E.164)"
        CHAT_VISITOR = "chat_visitor", "Chat visitor id"
        EXTERNAL = "external", "External id"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=320, help_text="Normalised: lower-case email, E.164 phone.")
    is_verified = models.BooleanField(default=False)
    is_primary = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="identity_unique_per_kind")]
        indexes = [models.Index(fields=["customer", "kind"], name="identity_customer_kind_idx")]
        verbose_name_plural = "customer identities"

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class EmailSubscription(models.Model):
    """Whether the customer gets email the desk starts for one purpose (``notice``, ``incident``, ``survey``).

    No row means subscribed. Email only: SMS consent is the carrier's STOP/START (``SmsOptOut``), and chat reaches
    only a visitor who is on the widget. Replies to the customer's own conversations are never unsubscribable."""

    class Source(models.TextChoices):
        AGENT = "agent", "An agent, on the customer's profile"
        UNSUBSCRIBE_LINK = "unsubscribe_link", "The customer, by the unsubscribe link"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="email_subscriptions")
    purpose = models.CharField(max_length=16)
    is_subscribed = models.BooleanField(default=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "purpose"], name="email_subscription_unique_purpose")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.purpose}: {'subscribed' if self.is_subscribed else 'unsubscribed'}"


class ContextEvent(models.Model):
    """Something the company's systems tell us the customer did: an order, a cart change, a plan change..."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="context_events")
    type = models.CharField(max_length=100, help_text="e.g. order.placed, cart.updated, email.opened")
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    # The sender's own id for the event, so that a retried POST records it once.
    external_id = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "source", "external_id"],
                condition=~Q(external_id=""),
                name="context_event_unique_external_id",
            )
        ]
        indexes = [models.Index(fields=["customer", "-occurred_at", "-id"], name="context_event_timeline_idx")]

    def __str__(self) -> str:
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class CustomerMerge(models.Model):
    """One merge of ``source`` into ``target``, with what moved (``moved``: lists of ids per kind of row), so that
    it can be undone: the undo moves exactly those rows back. A merge that has been undone keeps its row."""

    source = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges_as_source")
    target = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges_as_target")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    moved = models.JSONField(default=dict, blank=True)
    # The source's profile as it was (name, plan, attributes...), restored on undo.
    source_snapshot = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["target", "-created_at"], name="customer_merge_target_idx")]

    def __str__(self) -> str:
        return f"{self.source_id} into {self.target_id}"
