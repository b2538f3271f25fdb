import uuid

from django.db import models


class ChatVisitor(models.Model):
    """A browser that opened a chat channel's widget. The signed visitor token the browser keeps names it.

    The visitor is always some customer: a new anonymous one with a ``chat_visitor`` identity, or, when the host
    site vouched for its logged-in user with the channel's identity HMAC (``is_verified``), that customer. An email
    typed into the pre-chat form stays ``email`` here (unverified) and never merges the visitor into another
    customer by itself.
    """

    channel = models.ForeignKey("channels_app.Channel", on_delete=models.PROTECT, related_name="chat_visitors")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="chat_visitors")
    identity = models.ForeignKey(
        "customers.CustomerIdentity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=320, blank=True, help_text="As typed by the visitor; unverified.")
    is_verified = models.BooleanField(default=False, help_text="The host site vouched for this user (identity HMAC).")
    external_id = models.CharField(max_length=200, blank=True, help_text="The host site's user id, when verified.")
    origin = models.CharField(max_length=300, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # Read receipts: the highest message id each side has seen in this visitor's conversation.
    visitor_read_up_to = models.BigIntegerField(null=True, blank=True)
    agent_read_up_to = models.BigIntegerField(null=True, blank=True)
    # When the visitor last left (closed the widget/page, or chose to continue by email); cleared when they return.
    left_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["customer", "-last_seen_at"], name="chat_visitor_customer_idx")]

    def __str__(self) -> str:
        return f"chat visitor {self.public_id} on channel {self.channel_id}"
