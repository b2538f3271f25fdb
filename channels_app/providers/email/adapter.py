"""The email channel: replies go out over SMTP from the channel's address (the channel's own SMTP server when its
settings name one, else the site's EMAIL_* settings); inbound mail is parsed by
``channels_app.providers.email.parsing``.
"""

import logging
import smtplib

from django.conf import settings
from django.core.mail import get_connection

from channels_app.adapters.base import (
    FORMAT_EMAIL,
    PURPOSE_REPLY,
    REACHABLE,
    AdapterDefaults,
    Capabilities,
    PermanentDeliveryError,
    Reachability,
    RetryableDeliveryError,
)
from channels_app.adapters.registry import register
from channels_app.models import Channel
from channels_app.providers.email.outbound import build_email
from channels_app.providers.email.parsing import parse_email
from channels_app.types import DeliveryReceipt, InboundMessage, OutboundMessage
from customers.models import EmailSubscription
from helpdesk.text import storable

logger = logging.getLogger(__name__)

_MAX_ALIAS_CHARS = 255
# channel.settings key -> the SMTP backend's keyword argument.
_SMTP_SETTINGS = (
    ("smtp_host", "host"),
    ("smtp_port", "port"),
    ("smtp_username", "username"),
    ("smtp_use_tls", "use_tls"),
    ("smtp_use_ssl", "use_ssl"),
)


class EmailChannelAdapter(AdapterDefaults):
    kind = Channel.Kind.EMAIL
    provider = "smtp"
    recipient_identity_kinds = ("email",)
    message_format = FORMAT_EMAIL
    supports_list_unsubscribe = True
    capabilities = Capabilities(attachments=True, copies=True, addressed_references=True, acknowledgement=True)

    def verify(self, *, channel, request) -> None:
        # Mail arrives through a mailbox the desk polls or a pipe it controls, not a signed webhook.
        return None

    def parse(self, *, channel, payload, content_type: str = "") -> list[InboundMessage]:
        # Mail carries what PostgreSQL cannot store (a NUL in a body or a header, a surrogate a broken charset
        # decoder left): made storable here, where every path in (webhook, IMAP, import, raw API) parses.
        return [storable(parse_email(payload, channel=channel))]

    def send(self, *, channel, message: OutboundMessage) -> DeliveryReceipt:
        try:
            email = build_email(channel=channel, message=message, automatic=message.automatic)
        except ValueError as exc:
            raise PermanentDeliveryError(str(exc), code="invalid-address") from exc
        message_id = email.extra_headers["Message-ID"]
        try:
            with smtp_connection(channel) as connection:
                connection.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            code, _ = next(iter(exc.recipients.values()), (0, b""))
            raise _by_code(code, "the mail server refused the recipient") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(
                "the mail server does not support a feature the message needs", code="smtp-not-supported"
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise RetryableDeliveryError("the mail server closed the connection", code="smtp-disconnected") from exc
        except smtplib.SMTPConnectError as exc:
            raise RetryableDeliveryError(
                f"the mail server refused the connection with {exc.smtp_code}", code=f"smtp-{exc.smtp_code}"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            # SMTPSenderRefused, SMTPDataError, SMTPAuthenticationError, SMTPHeloError: the reply code decides.
            raise _by_code(exc.smtp_code, f"the mail server answered {exc.smtp_code}") from exc
        except smtplib.SMTPException as exc:
            raise RetryableDeliveryError(f"SMTP error: {type(exc).__name__}", code="smtp-error") from exc
        except OSError as exc:
            # Connection refused, unreachable host, DNS failure, timeout (socket.timeout is an OSError).
            raise RetryableDeliveryError(f"mail server unreachable: {type(exc).__name__}", code="network") from exc
        logger.info("channels_app.email_sent", extra={"message_id": message.message_id, "channel_id": channel.pk})
        return DeliveryReceipt(provider_message_id=message_id, aliases=_substituted_ids(email, ours=message_id))

    def reachability(self, *, channel, identity, purpose: str) -> Reachability:
        # An answer on the customer's own conversation is transactional: an unsubscribe never stops it.
        return _email_reachability(customer_id=identity.customer_id, purpose=purpose)

    def reachability_batch(self, *, channels, customer_id: int, identities, purpose: str) -> dict[int, Reachability]:
        # A subscription is per customer and purpose, whichever email channel writes: one answer for every channel.
        answer = _email_reachability(customer_id=customer_id, purpose=purpose) if channels else REACHABLE
        return {channel.pk: answer for channel in channels}


def _email_reachability(*, customer_id: int, purpose: str) -> Reachability:
    # An answer on the customer's own conversation is transactional: an unsubscribe never stops it.
    if purpose == PURPOSE_REPLY:
        return REACHABLE
    is_unsubscribed = EmailSubscription.objects.filter(
        customer_id=customer_id, purpose=purpose, is_subscribed=False
    ).exists()
    if not is_unsubscribed:
        return REACHABLE
    return Reachability(
        is_reachable=False,
        reason="email_unsubscribed",
        detail=f"This customer unsubscribed from {purpose} emails.",
    )


def _substituted_ids(email, *, ours: str) -> tuple[str, ...]:
    """Ids the message went out under besides ours: the ESP's message id that an anymail backend reports (Amazon
    SES, for one, replaces our Message-ID with ``<{that id}@email.amazonses.com>``), or a Message-ID header the
    backend rewrote."""
    found = []
    status = getattr(email, "anymail_status", None)
    if status is not None:
        found.append(status.message_id)
        found.extend(recipient.message_id for recipient in (status.recipients or {}).values())
    found.append(email.extra_headers.get("Message-ID"))
    aliases = []
    for value in found:
        for item in value if isinstance(value, set | frozenset | list | tuple) else (value,):
            item = str(item).strip() if item is not None else ""
            if item and item != ours and item not in aliases and len(item) <= _MAX_ALIAS_CHARS:
                aliases.append(item)
    return tuple(aliases)


def smtp_connection(channel: Channel):
    channel_settings = channel.settings or {}
    options = {
        keyword: channel_settings[key] for key, keyword in _SMTP_SETTINGS if channel_settings.get(key) is not None
    }
    password = (channel.secrets or {}).get("smtp_password")
    if password:
        options["password"] = password
    return get_connection(
        backend=channel_settings.get("email_backend") or None,
        fail_silently=False,
        timeout=settings.HELPDESK["OUTBOUND_HTTP_TIMEOUT_SECONDS"],
        **options,
    )


def _by_code(code: int, detail: str) -> Exception:
    """5xx is the server's final answer; 4xx (and anything unexpected) may pass."""
    if 500 <= code <= 599:
        return PermanentDeliveryError(detail, code=f"smtp-{code}")
    return RetryableDeliveryError(detail, code=f"smtp-{code}")


register(EmailChannelAdapter)
