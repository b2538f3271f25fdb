from django.conf import settings
from django.db import models
from django.db.models import Q


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AgentProfile(models.Model):
    class Role(models.TextChoices):
        AGENT = "agent", "Agent"
        ADMIN = "admin", "Administrator"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    display_name = models.CharField(max_length=150, blank=True)
    teams = models.ManyToManyField(Team, related_name="agents", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.display_name or self.user.get_username()

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class ApiToken(models.Model):
    """A bearer token. Only a SHA-256 digest of the secret is stored; the secret is shown once at creation.

    A token either acts as an agent (``user`` set: their personal token) or is an integration token of the
    company's own systems (``user`` empty), limited to ``scopes`` and, for posting messages, to one channel.
    """

    class Scope(models.TextChoices):
        MESSAGES_WRITE = "messages:write", "Post inbound messages to its channel"
        CUSTOMERS_READ = "customers:read", "Read customers and their timelines"
        CUSTOMERS_WRITE = "customers:write", "Upsert customers and post context events"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True, help_text="The first characters, to recognise it.")
    digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    channel = models.ForeignKey(
        "channels_app.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="api_token_channel_only_for_integrations",
                condition=Q(channel__isnull=True) | Q(user__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])
