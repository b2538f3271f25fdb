import secrets
import uuid

from django.db import models
from django.db.models import Q

from channels_app.secrets import EncryptedJSONField


def _public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


class Channel(models.Model):
    """A configured way in and out: a mailbox, an SMS number, a chat widget, or an API integration."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        CHAT = "chat", "Live chat"
        API = "api", "API"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    provider = models.CharField(
        max_length=32,
        blank=True,
        help_text="Which adapter talks to the provider (e.g. twilio); blank: the kind's default.",
    )
    name = models.CharField(max_length=100)
    # The address customers write to: an email address, an E.164 number, a domain. Unique per kind.
    address = models.CharField(max_length=320, blank=True)
    public_key = models.CharField(max_length=40, unique=True, default=_public_key, editable=False)
    settings = models.JSONField(default=dict, blank=True, help_text="Non-secret configuration.")
    secrets = EncryptedJSONField(blank=True, default=dict, editable=False)
    default_team = models.ForeignKey(
        "agents.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="default_for_channels"
    )
    # Whether a new message from a customer with an open ticket continues it (the conversation follows the
    # customer). Email threads by headers instead, so its channels usually turn this off.
    continue_open_ticket = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "address"], condition=~Q(address=""), name="channel_address_unique_per_kind"
            )
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def __repr__(self) -> str:
        # Never include secrets.
        return f"<Channel {self.pk} {self.kind} {self.name!r}>"

    @property
    def secret_names(self) -> list[str]:
        return sorted(self.secrets or {})


class InboundEvent(models.Model):
    """A payload as a provider delivered it, stored before anything parses it. Nothing inbound bypasses this."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed (retryable)"
        QUARANTINED = "quarantined", "Quarantined"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="inbound_events")
    provider_id = models.CharField(max_length=255, help_text="The provider's id for this payload.")
    content_type = models.CharField(max_length=100, blank=True)
    raw = models.BinaryField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    reason = models.TextField(blank=True, help_text="Why it failed or was quarantined.")
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "provider_id"], name="inbound_event_unique_provider_id")
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="inbound_event_status_idx")]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.provider_id} ({self.status})"


class Delivery(models.Model):
    """Handing one outbound message to its channel's provider, with every attempt recorded."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    message = models.OneToOneField("tickets.Message", on_delete=models.CASCADE, related_name="delivery")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="deliveries")
    recipient = models.CharField(max_length=320, help_text="Address, number or visitor id it goes to.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    provider_message_id = models.CharField(max_length=255, blank=True)
    # The provider's own word for where the message is (Twilio's queued, sent, delivered, undelivered...), as its
    # last status callback that moved the delivery said.
    provider_status = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "updated_at"], name="delivery_status_idx")]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"


class DeliveryAttempt(models.Model):
    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        RETRYABLE_ERROR = "retryable_error", "Error, will retry"
        PERMANENT_ERROR = "permanent_error", "Error, gave up"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_unique")]
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"


class ImapMailboxState(models.Model):
    """Where the polling of an email channel's IMAP folder stands, and how its last polls went.

    ``last_uid`` is the highest UID whose message is stored here (committed) under ``uidvalidity``;
    ``last_marked_uid`` the highest one also marked \\Seen or moved on the server. Messages between the two are
    ours but still wait for that server action, which the next poll does before it fetches anything new.
    ``lease_token``/``leased_until`` make one poll per mailbox at a time across workers.
    """

    channel = models.OneToOneField(Channel, on_delete=models.CASCADE, related_name="imap_state")
    folder = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    last_marked_uid = models.BigIntegerField(default=0)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    leased_until = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "IMAP mailbox state"

    def __str__(self) -> str:
        return f"IMAP {self.channel_id}:{self.folder} (uid {self.last_uid})"


class SmsOptOut(models.Model):
    """A phone number that texted STOP (or another opt-out keyword): nothing goes to it by SMS, from any SMS
    channel, until it texts START. Stricter than the carriers' per-sender rule on purpose: a customer who said stop
    to one of our numbers meant us."""

    phone = models.CharField(max_length=32, unique=True, help_text="E.164.")
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    keyword = models.CharField(max_length=32, help_text="What they texted, e.g. STOP.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "SMS opt-out"

    def __str__(self) -> str:
        return f"{self.phone} opted out ({self.keyword})"


class InboundMedia(models.Model):
    """A media file an inbound message refers to by URL (MMS), fetched by a task and stored as an attachment.

    A fetch that keeps failing ends ``failed`` with the reason, and a URL we will not fetch (not the provider's
    media host, a type or size over the limits) ends ``refused``: both stay visible on the message.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be fetched"
        STORED = "stored", "Stored"
        FAILED = "failed", "Fetch failed"
        REFUSED = "refused", "Refused"

    message = models.ForeignKey("tickets.Message", on_delete=models.CASCADE, related_name="media")
    index = models.PositiveSmallIntegerField(help_text="Its position in the provider's payload (MediaUrl<index>).")
    url = models.URLField(max_length=2000)
    content_type = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    attachment = models.ForeignKey(
        "tickets.Attachment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "index"], name="inbound_media_unique_index")]
        indexes = [models.Index(fields=["status", "updated_at"], name="inbound_media_status_idx")]
        verbose_name_plural = "inbound media"

    def __str__(self) -> str:
        return f"media {self.index} of message {self.message_id} ({self.status})"


class WebhookNonce(models.Model):
    """A signed provider post's one-time value (Mailgun's ``token``), so a captured post cannot be replayed.

    ``accepted_at`` is set in the transaction that stores the post's event: a post refused with a retryable error
    (nothing stored) leaves a row without it, which lets the provider's retry of that same content in after the
    timestamp tolerance (Mailgun retries with the original timestamp and token) while any other content under the
    token is refused. ``content_digest`` is the SHA-256 of what the signature does not cover (the form's fields and
    files). Rows are pruned by ``channels_app.prune_webhook_nonces`` once a replay would be too old anyway.
    """

    provider = models.CharField(max_length=32)
    nonce = models.CharField(max_length=255)
    content_digest = models.CharField(max_length=64)
    signed_at = models.DateTimeField(help_text="The provider's timestamp of the post.")
    accepted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "nonce"], name="webhook_nonce_unique")]
        indexes = [models.Index(fields=["signed_at"], name="webhook_nonce_signed_at_idx")]

    def __str__(self) -> str:
        return f"{self.provider} nonce ({'accepted' if self.accepted_at else 'refused, retryable'})"
