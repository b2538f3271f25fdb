"""The "Test connection" of each channel kind, answering in words an admin can act on: a check never raises (the
page shows the provider's refusal instead of a 500), and never shows a secret.

They reuse the channels' own connection code (the IMAP poller's connect, the email adapter's SMTP connection, the
Twilio check of the Django admin), so a passing check means the real paths work with these settings."""

import imaplib
import logging
import smtplib
from dataclasses import dataclass

from django.core.mail import EmailMessage
from imapclient.exceptions import IMAPClientError, LoginError

# The Django admin's form for the SMS check (number normalised, opted-out numbers refused): one rule for both pages.
from channels_app.admin import SmsCheckForm
from channels_app.models import Channel
from channels_app.providers.email.adapter import smtp_connection
from channels_app.providers.email.imap import ImapConfig, ImapConfigError, imap_connect
from channels_app.providers.twilio.outbound import TwilioCheckFailed, twilio_connection_check
from channels_app.services.channels import chat_channel_settings_clean
from chat.embed import widget_embed_snippet
from helpdesk.errors import DomainError

logger = logging.getLogger(__name__)

__all__ = ["SmsCheckForm", "chat_check", "chat_embed_snippet", "imap_check", "sms_check", "smtp_check"]


@dataclass(frozen=True)
class CheckResult:
    is_ok: bool
    text: str


def imap_check(*, channel: Channel) -> CheckResult:
    """Log in with the channel's IMAP settings and open its folder read-only (nothing is fetched or marked)."""
    if not (channel.settings or {}).get("imap_host"):
        return CheckResult(False, "No IMAP host is set for this mailbox: fill in the IMAP settings first.")
    try:
        config = ImapConfig.from_channel(channel)
    except ImapConfigError as exc:
        return CheckResult(False, f"The IMAP settings cannot work: {exc}.")
    where = f"{config.host}:{config.port}"
    try:
        with imap_connect(config) as client:
            try:
                client.login(config.username, config.password)
            except LoginError as exc:
                return CheckResult(False, f"{where} refused the login of {config.username}: {_text(exc)}")
            try:
                selected = client.select_folder(config.folder, readonly=True)
            except (imaplib.IMAP4.error, IMAPClientError) as exc:
                return CheckResult(False, f"Logged in, but the folder {config.folder} cannot be opened: {_text(exc)}")
    except (OSError, imaplib.IMAP4.error, IMAPClientError) as exc:
        logger.info("console.imap_check_failed", extra={"channel_id": channel.pk, "error_type": type(exc).__name__})
        return CheckResult(False, f"Could not talk to the IMAP server {where}: {type(exc).__name__}: {_text(exc)}")
    count = int(selected.get(b"EXISTS", 0))
    return CheckResult(
        True, f"Logged in to {where} as {config.username}; folder {config.folder} has {count} message(s)."
    )


def smtp_check(*, channel: Channel, recipient: str) -> CheckResult:
    """Send a short test email from the channel's address to ``recipient`` the way replies go out."""
    if not channel.address:
        return CheckResult(False, "The channel has no address to send from.")
    message = EmailMessage(
        subject=f"Test message from the help desk channel {channel.name}",
        body="This is a test of the channel's outgoing mail settings. Nothing needs to be done.",
        from_email=channel.address,
        to=[recipient],
    )
    options = channel.settings or {}
    where = (
        f"{options.get('smtp_host')}:{options.get('smtp_port') or 'default port'}"
        if options.get("smtp_host")
        else "the site's mail settings"
    )
    try:
        with smtp_connection(channel) as connection:
            connection.send_messages([message])
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        return CheckResult(False, f"The mail server ({where}) refused the recipient: {code} {_text(reply)}")
    except smtplib.SMTPResponseException as exc:
        return CheckResult(False, f"The mail server ({where}) answered {exc.smtp_code} {_text(exc.smtp_error)}")
    except (smtplib.SMTPException, OSError) as exc:
        logger.info("console.smtp_check_failed", extra={"channel_id": channel.pk, "error_type": type(exc).__name__})
        return CheckResult(False, f"Could not send through {where}: {type(exc).__name__}: {_text(exc)}")
    return CheckResult(True, f"The test email to {recipient} was accepted by {where}.")


def sms_check(*, channel: Channel, test_number: str = "") -> CheckResult:
    try:
        check = twilio_connection_check(channel=channel, test_recipient=test_number)
    except TwilioCheckFailed as exc:
        return CheckResult(False, str(exc))
    text = f"Connected to the Twilio account {check.account_name!r} ({check.account_status})."
    if check.test_message_sid:
        text += f" Test message accepted by Twilio as {check.test_message_sid}."
    return CheckResult(True, text)


def chat_check(*, channel: Channel) -> CheckResult:
    """The allowed origins, checked as a save would check them; an empty list means the widget works nowhere."""
    try:
        cleaned = chat_channel_settings_clean(settings=channel.settings or {})
    except DomainError as exc:
        return CheckResult(False, exc.detail)
    origins = cleaned.get("allowed_origins") or []
    if not origins:
        return CheckResult(False, "No allowed origin: the widget answers no site. Add the sites that embed it.")
    return CheckResult(True, "The widget may be embedded on: " + ", ".join(origins) + ".")


def chat_embed_snippet(*, channel: Channel) -> str:
    return widget_embed_snippet(channel=channel)


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, Exception):
        value = " ".join(
            str(part.decode("utf-8", "replace") if isinstance(part, bytes) else part) for part in value.args
        )
    return str(value).strip()[:300]
