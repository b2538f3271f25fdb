"""anymail's inbound webhook views for the providers we support, made strict.

anymail accepts posts when a provider's secret is not configured (it only warns); here such a provider answers
503, so it keeps the message and retries it once the secret is set. When anymail cannot parse a message that came
as raw MIME, the event still reaches ``email_webhook_receive`` (without a parsed message) and the raw bytes are
stored: the parser in the task quarantines it with a reason if it must.
"""

import logging

from anymail.exceptions import AnymailAPIError, AnymailConfigurationError, AnymailWebhookValidationFailure
from anymail.signals import AnymailInboundEvent, EventType
from anymail.utils import get_anymail_setting
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView
from anymail.webhooks.mailgun import MailgunInboundWebhookView
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from anymail.webhooks.sendgrid import SendGridInboundWebhookView
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt

from channels_app.email.webhooks import NoChannelForRecipient, NoRawMessage

logger = logging.getLogger(__name__)

# Errors that mean "misconfigured or not from the provider": never stored as a message.
_NOT_A_MESSAGE = (AnymailConfigurationError, AnymailWebhookValidationFailure)


class WebhookNotConfigured(Exception):
    """The provider's secret is not set: the webhook must not accept anything."""


class UnsupportedDelivery(Exception):
    """A delivery form we cannot take without calls to the provider (SES's S3 action)."""


class _InboundEmailView:
    """Answers our refusals with a reason, keeping anymail's own (400 for a bad signature or secret)."""

    # A whole email in a form post: allowed up to the email cap (helpdesk.api.middleware), not the API's.
    body_limit_setting = "INBOUND_EMAIL_MAX_BODY_BYTES"

    @method_decorator(csrf_exempt)
    def dispatch(self, request, *args, **kwargs):
        try:
            # Read now, before anymail parses the form: a MIME field's exact bytes are recovered from the body.
            request.body  # noqa: B018
        except RequestDataTooBig:
            return JsonResponse({"detail": "The message is larger than INBOUND_EMAIL_MAX_BODY_BYTES."}, status=413)
        try:
            return super().dispatch(request, *args, **kwargs)
        except WebhookNotConfigured as exc:
            logger.error("channels_app.email_webhook_not_configured", extra={"provider": self.esp_name})
            return JsonResponse({"detail": str(exc)}, status=503)
        except NoChannelForRecipient as exc:
            return JsonResponse({"detail": str(exc)}, status=503)
        except (NoRawMessage, UnsupportedDelivery) as exc:
            logger.error("channels_app.email_webhook_refused", extra={"provider": self.esp_name})
            return JsonResponse({"detail": str(exc)}, status=400)

    def esp_to_anymail_event(self, esp_event):
        """anymail's parse of the post; when it raises on a message it could not read but the raw MIME is there,
        an event without a parsed message, so the raw is still stored (and parsed by our own parser later)."""
        try:
            return super().esp_to_anymail_event(esp_event)
        except _NOT_A_MESSAGE:
            raise
        except Exception as exc:
            if not self.has_raw_message(esp_event):
                raise
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
    def validate_request(self, request):
        # anymail would check an HMAC under an empty key, which anyone can compute.
        if not self.webhook_signing_key:
            raise WebhookNotConfigured("Mailgun inbound email is not configured (MAILGUN_WEBHOOK_SIGNING_KEY).")

    def has_raw_message(self, request) -> bool:
        return "body-mime" in request.POST

    def raw_event_id(self, request):
        return request.POST.get("token")


class PostmarkInboundEmailView(_InboundEmailView, _WebhookSecretRequired, PostmarkInboundWebhookView):
    def has_raw_message(self, esp_event) -> bool:
        return bool(esp_event.get("RawEmail"))

    def raw_event_id(self, esp_event):
        return esp_event.get("MessageID")


class SendGridInboundEmailView(_InboundEmailView, _WebhookSecretRequired, SendGridInboundWebhookView):
    def has_raw_message(self, request) -> bool:
        return "email" in request.POST


class AmazonSESInboundEmailView(_InboundEmailView, _WebhookSecretRequired, AmazonSESInboundWebhookView):
    """SES receipt rules with an SNS action (the message in the notification, up to 150 KB). Not the S3 action:
    fetching from S3 needs AWS calls inside the request. anymail does not verify SNS signatures; the basic-auth
    secret (and our optional topic allow-list) is what authenticates a post."""

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

    def esp_to_anymail_events(self, ses_event, sns_message):
        action = ses_event.get("receipt", {}).get("action", {})
        if action.get("type") == "S3":
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
                raise
            event_id = ses_event.get("mail", {}).get("messageId")
            return [self.unparsed_event(event_id=event_id, esp_event=ses_event, error=exc)]
