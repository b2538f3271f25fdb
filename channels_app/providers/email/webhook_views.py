"""anymail's inbound webhook views for the providers we support, made strict.

anymail accepts posts when a provider's secret is not configured (it only warns); here such a provider answers
503, so it keeps the message and retries it once the secret is set. When anymail cannot parse a message that came
as raw MIME, the event still reaches ``email_webhook_receive`` (without a parsed message) and the raw bytes are
stored: the parser in the task quarantines it with a reason if it must.

No post answers 5xx except what a retry can fix (a secret or a channel not configured yet, AWS not reachable).
A post that can never become a message is refused with a ``{"detail": ...}`` reason in the status that stops the
provider's retries: Mailgun retries everything but 200 and 406 for 8 hours, Postmark everything but 200 and 403
(10 times over ~10.5 hours), SendGrid and SNS retry only 5xx. A bad signature or secret stays 400 for all: a
misconfigured key is fixed within the retry window and the provider's retry is then taken.
"""

import json
import logging
import re
from datetime import UTC, datetime

from anymail.exceptions import AnymailAPIError, AnymailConfigurationError, AnymailWebhookValidationFailure
from anymail.signals import AnymailInboundEvent, EventType
from anymail.utils import get_anymail_setting
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView
from anymail.webhooks.mailgun import MailgunInboundWebhookView
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from anymail.webhooks.sendgrid import SendGridInboundWebhookView
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import transaction
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt

from channels_app.providers.email.sns_signature import (
    SnsCertificateUnavailable,
    SnsSignatureError,
    sns_signature_verify,
)
from channels_app.providers.email.webhooks import (
    MAILGUN_SIGNATURE_FIELDS,
    NoChannelForRecipient,
    NotAMessage,
    form_digest,
)
from channels_app.services.webhook_nonces import (
    NonceClaim,
    ReplayRefused,
    webhook_nonce_accept,
    webhook_nonce_check,
    webhook_nonce_note_refused,
)

logger = logging.getLogger(__name__)

# Errors that mean "misconfigured or not from the provider": never stored as a message.
_NOT_A_MESSAGE = (AnymailConfigurationError, AnymailWebhookValidationFailure, NotAMessage)
# A JSON string escape that can decode to a lone surrogate, which anymail cannot put in a message.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class WebhookNotConfigured(Exception):
    """The provider's secret is not set: the webhook must not accept anything."""


class UnsupportedDelivery(Exception):
    """A delivery form we cannot take without calls to the provider (SES's S3 action)."""


class ProviderUnreachable(Exception):
    """A call the webhook must make to the provider failed (SNS ConfirmSubscription): retryable."""


def _detail(status: int, reason: str) -> JsonResponse:
    return JsonResponse({"detail": reason}, status=status)


class _InboundEmailView:
    """Answers our refusals with a reason, keeping anymail's own (400 for a bad signature or secret)."""

    # A whole email in a form post: allowed up to the email cap (helpdesk.api.middleware), not the API's.
    body_limit_setting = "INBOUND_EMAIL_MAX_BODY_BYTES"
    # The 4xx that tells this provider the post is refused for good (see the module docstring).
    refusal_status = 400
    # Set once a signed post's one-time token is used up in the storing transaction (Mailgun).
    nonce_claim: NonceClaim | None = None

    @method_decorator(csrf_exempt)
    def dispatch(self, request, *args, **kwargs):
        try:
            # Read now, before anymail parses the form: a MIME field's exact bytes are recovered from the body.
            request.body  # noqa: B018
        except RequestDataTooBig:
            return _detail(413, "The message is larger than INBOUND_EMAIL_MAX_BODY_BYTES.")
        try:
            return super().dispatch(request, *args, **kwargs)
        except WebhookNotConfigured as exc:
            logger.error("channels_app.email_webhook_not_configured", extra={"provider": self.esp_name})
            return _detail(503, str(exc))
        except (NoChannelForRecipient, ProviderUnreachable) as exc:
            if self.nonce_claim is not None:
                webhook_nonce_note_refused(claim=self.nonce_claim)
            return _detail(503, str(exc))
        except ReplayRefused as exc:
            logger.warning("channels_app.email_webhook_replay_refused", extra={"provider": self.esp_name})
            return _detail(self.refusal_status, str(exc))
        except (NotAMessage, UnsupportedDelivery, AnymailConfigurationError) as exc:
            logger.warning(
                "channels_app.email_webhook_refused", extra={"provider": self.esp_name, "error": type(exc).__name__}
            )
            return _detail(self.refusal_status, str(exc))
        except AnymailWebhookValidationFailure as exc:
            logger.warning("channels_app.email_webhook_unauthenticated", extra={"provider": self.esp_name})
            return _detail(400, str(exc))
        except RequestDataTooBig:
            return _detail(413, "A form field is larger than INBOUND_EMAIL_MAX_BODY_BYTES.")
        except (MultiPartParserError, SuspiciousOperation, AnymailAPIError) as exc:
            # A body that is not the form or JSON it says it is (bad boundary, too many fields, not an SNS message).
            logger.warning(
                "channels_app.email_webhook_malformed", extra={"provider": self.esp_name, "error": type(exc).__name__}
            )
            return _detail(400, f"The request body could not be read as a {self.esp_name} post.")

    def esp_to_anymail_event(self, esp_event):
        """anymail's parse of the post; when it raises on a message it could not read but the raw MIME is there,
        an event without a parsed message, so the raw is still stored (and parsed by our own parser later). A post
        without raw MIME that anymail cannot read is no message: refused."""
        try:
            return super().esp_to_anymail_event(esp_event)
        except _NOT_A_MESSAGE:
            raise
        except Exception as exc:
            if not self.has_raw_message(esp_event):
                raise NotAMessage(
                    f"This {self.esp_name} post could not be read as a message ({type(exc).__name__})."
                ) from exc
            return self.unparsed_event(event_id=self.raw_event_id(esp_event), esp_event=esp_event, error=exc)

    def has_raw_message(self, esp_event) -> bool:
        return False

    def raw_event_id(self, esp_event):
        return None

    def unparsed_event(self, *, event_id, esp_event, error: Exception) -> AnymailInboundEvent:
        logger.warning(
            "channels_app.email_webhook_unparsed",
            extra={"provider": self.esp_name, "error": type(error).__name__},
        )
        return AnymailInboundEvent(event_type=EventType.INBOUND, event_id=event_id, esp_event=esp_event, message=None)


class _WebhookSecretRequired:
    def validate_request(self, request):
        if not self.basic_auth:
            raise WebhookNotConfigured(f"{self.esp_name} inbound email is not configured (ANYMAIL_WEBHOOK_SECRET).")


class MailgunInboundEmailView(_InboundEmailView, MailgunInboundWebhookView):
    """Mailgun signs ``timestamp + token`` only, so each post's token is used once (``webhook_nonces``), in the
    transaction that stores its message."""

    refusal_status = 406

    def validate_request(self, request):
        # Runs before anymail's signature check (validators run in MRO order).
        # anymail would check an HMAC under an empty key, which anyone can compute.
        if not self.webhook_signing_key:
            raise WebhookNotConfigured("Mailgun inbound email is not configured (MAILGUN_WEBHOOK_SIGNING_KEY).")
        if request.content_type == "application/json":
            raise NotAMessage(
                "Mailgun posts JSON only for tracking events (delivered, opened, ...); this URL takes the "
                "forward() of a receiving route."
            )
        for name in MAILGUN_SIGNATURE_FIELDS:
            value = request.POST.get(name, "")
            # anymail encodes timestamp + token as ASCII; Mailgun's tokens are 50 characters.
            if not value.isascii() or len(value) > 255:
                raise AnymailWebhookValidationFailure(f"Mailgun webhook called with a malformed {name}")

    def post(self, request, *args, **kwargs):
        # One transaction for the token and the stored message: a refusal that rolls back leaves the token unused.
        with transaction.atomic():
            return super().post(request, *args, **kwargs)

    def parse_events(self, request):
        if request.content_type != "application/json" and request.POST.get("event", "inbound") != "inbound":
            raise NotAMessage(
                f"This is a Mailgun {request.POST.get('event')!r} tracking event; this URL takes inbound mail only."
            )
        claim = self.signed_claim(request)
        if webhook_nonce_check(claim=claim):
            logger.info("channels_app.email_webhook_already_stored", extra={"provider": self.esp_name})
            return []
        events = super().parse_events(request)
        if not webhook_nonce_accept(claim=claim):
            return []
        self.nonce_claim = claim
        return events

    @staticmethod
    def signed_claim(request) -> NonceClaim:
        timestamp = request.POST["timestamp"]
        # Eleven digits reach the year 5138; anything else is not a Unix time.
        if not (timestamp.isdigit() and len(timestamp) <= 11):
            raise NotAMessage("The signature's timestamp is not a Unix time.")
        return NonceClaim(
            provider="mailgun",
            nonce=request.POST["token"],
            content_digest=form_digest(request, exclude=MAILGUN_SIGNATURE_FIELDS),
            signed_at=datetime.fromtimestamp(int(timestamp), tz=UTC),
        )

    def has_raw_message(self, request) -> bool:
        return "body-mime" in request.POST or "body-mime" in request.FILES

    def raw_event_id(self, request):
        return request.POST.get("token")


class PostmarkInboundEmailView(_InboundEmailView, _WebhookSecretRequired, PostmarkInboundWebhookView):
    """Postmark authenticates with basic auth only: no signature, timestamp or nonce to check."""

    refusal_status = 403

    def parse_events(self, request):
        try:
            body = request.body.decode("utf-8")
            payload = json.loads(body)
            if _SURROGATE_ESCAPE.search(body):
                # A lone surrogate escape cannot be put in a message: read as U+FFFD, as any undecodable text.
                text = json.dumps(payload, ensure_ascii=False)
                payload = json.loads(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise NotAMessage(f"The body is not JSON ({type(exc).__name__}).") from exc
        if not isinstance(payload, dict):
            raise NotAMessage(f"Postmark posts one JSON object; this body is a JSON {type(payload).__name__}.")
        return [self.esp_to_anymail_event(payload)]

    def has_raw_message(self, esp_event) -> bool:
        return isinstance(esp_event.get("RawEmail"), str) and bool(esp_event["RawEmail"])

    def raw_event_id(self, esp_event):
        return esp_event.get("MessageID")


class SendGridInboundEmailView(_InboundEmailView, _WebhookSecretRequired, SendGridInboundWebhookView):
    """SendGrid's Inbound Parse authenticates with basic auth only (anymail verifies no signature for it): no
    timestamp or nonce to check."""

    def parse_events(self, request):
        if request.content_type == "application/json":
            raise NotAMessage(
                "SendGrid posts JSON only from its Event Webhook (tracking); this URL takes Inbound Parse."
            )
        if not ({"headers", "email"} & set(request.POST) or "email" in request.FILES):
            raise NotAMessage("This is not an Inbound Parse post: it has neither a 'headers' nor an 'email' field.")
        return super().parse_events(request)

    def has_raw_message(self, request) -> bool:
        return "email" in request.POST or "email" in request.FILES


class AmazonSESInboundEmailView(_InboundEmailView, _WebhookSecretRequired, AmazonSESInboundWebhookView):
    """SES receipt rules with an SNS action (the message in the notification, up to 150 KB). Not the S3 action:
    fetching from S3 needs AWS calls inside the request. A post needs the basic-auth secret, a topic on our
    optional allow-list, and SNS's signature with a recent Timestamp (``sns_signature``: anymail checks none)."""

    def validate_request(self, request):
        try:
            sns_message = self._parse_sns_message(request)
        except AnymailAPIError as exc:
            raise AnymailWebhookValidationFailure("Malformed SNS message body") from exc
        if not isinstance(sns_message, dict):
            raise AnymailWebhookValidationFailure("Malformed SNS message body")
        topics = get_anymail_setting("inbound_topic_arns", esp_name=self.esp_name, default=[])
        if topics and sns_message.get("TopicArn") not in topics:
            raise AnymailWebhookValidationFailure("SNS message from a topic not in AMAZON_SES_INBOUND_TOPIC_ARNS")
        try:
            sns_signature_verify(sns_message, tolerance_seconds=settings.EMAIL_WEBHOOK_SNS_TOLERANCE_SECONDS)
        except SnsSignatureError as exc:
            raise AnymailWebhookValidationFailure(str(exc)) from exc
        except SnsCertificateUnavailable as exc:
            raise ProviderUnreachable(str(exc)) from exc

    def auto_confirm_sns_subscription(self, sns_message):
        topic_arn, token = sns_message.get("TopicArn"), sns_message.get("Token")
        if not (isinstance(topic_arn, str) and topic_arn.count(":") >= 5 and isinstance(token, str) and token):
            raise NotAMessage("The SubscriptionConfirmation has no valid TopicArn and Token.")
        try:
            super().auto_confirm_sns_subscription(sns_message)
        except (BotoCoreError, ClientError) as exc:
            logger.error(
                "channels_app.email_webhook_sns_confirm_failed",
                extra={"provider": self.esp_name, "error": type(exc).__name__},
            )
            raise ProviderUnreachable(
                f"AWS did not confirm the SNS subscription ({type(exc).__name__}); SNS retries the confirmation, "
                "or confirm it in the SNS console."
            ) from exc

    def esp_to_anymail_events(self, ses_event, sns_message):
        if not isinstance(ses_event, dict):
            raise NotAMessage("The SNS notification's Message is not an SES notification (not a JSON object).")
        receipt = ses_event.get("receipt")
        action = receipt.get("action") if isinstance(receipt, dict) else None
        if not isinstance(action, dict):
            action = {}
        if ses_event.get("notificationType") == "Received" and action.get("type") == "S3":
            raise UnsupportedDelivery(
                "SES receipt rules with an S3 action are not supported (they need AWS calls); use an SNS action. "
                "The message stays in the S3 bucket."
            )
        try:
            return super().esp_to_anymail_events(ses_event, sns_message)
        except _NOT_A_MESSAGE:
            raise
        except Exception as exc:
            if action.get("type") != "SNS" or not ses_event.get("content"):
                raise NotAMessage(f"This SES notification could not be read ({type(exc).__name__}).") from exc
            mail = ses_event.get("mail")
            event_id = mail.get("messageId") if isinstance(mail, dict) else None
            return [self.unparsed_event(event_id=event_id, esp_event=ses_event, error=exc)]
