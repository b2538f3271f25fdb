"""Posting to the inbound email webhooks as each provider does, from the providers' own payloads in
tests/fixtures/<provider>/ (see its README for where each came from).

Import the fixtures into a test module: ``from tests.channels_app.email_webhook_posts import anymail_settings,
channel, post  # noqa: F401``.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import pytest

from channels_app.models import Channel
from tests.channels_app.sns_signing import sns_signed
from tests.factories import ChannelFactory

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SIGNING_KEY = "key-mailgun-signing-test"
WEBHOOK_SECRET = "desk:s3cret-webhook"
MAILGUN_URL = "/inbound/email/mailgun/inbound_mime/"
MAILGUN_PARSED_URL = "/inbound/email/mailgun/inbound/"
POSTMARK_URL = "/inbound/email/postmark/inbound/"
SENDGRID_URL = "/inbound/email/sendgrid/inbound/"
SES_URL = "/inbound/email/amazon_ses/inbound/"
BOUNDARY = "------------------------9d1d2a7c1f3e4b5a"


def fixture_json(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def basic_auth(credentials: str = WEBHOOK_SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def multipart(fields: dict, files: dict | None = None, *, boundary: str = BOUNDARY) -> tuple[bytes, str]:
    """A multipart/form-data body: ``fields`` as form fields, ``files`` as file parts (name: (filename, bytes))."""
    marker = b"--" + boundary.encode()
    body = b""
    for name, value in fields.items():
        value = value.encode() if isinstance(value, str) else value
        body += marker + b'\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
        body += value + b"\r\n"
    for name, (filename, content) in (files or {}).items():
        body += marker + b'\r\nContent-Disposition: form-data; name="' + name.encode()
        body += b'"; filename="' + filename.encode() + b'"\r\nContent-Type: message/rfc822\r\n\r\n'
        body += content + b"\r\n"
    body += marker + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary}"


def mailgun_signature(*, timestamp: str, token: str, key: str = SIGNING_KEY) -> str:
    """Mailgun's documented signature: hex HMAC-SHA256 of timestamp + token under the webhook signing key."""
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def mailgun_signed(fields: dict, *, timestamp: int | str | None = None, token: str | None = None) -> dict:
    """``fields`` with a fresh Mailgun signature block (``timestamp`` defaults to now)."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or uuid.uuid4().hex + uuid.uuid4().hex[:18]
    return {
        **fields,
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun_signature(timestamp=timestamp, token=token),
    }


def mailgun_mime_fields(*, recipient: str = "support@desk.example", body_mime: str | bytes | None = None) -> dict:
    """Mailgun's recorded raw-MIME forward() post, for our channel's address."""
    fields = fixture_json("mailgun/inbound_mime.json")
    fields["recipient"] = recipient
    if body_mime is not None:
        fields["body-mime"] = body_mime
    return fields


def sns_post(post, notification: dict, *, sign: bool = True, **headers):
    """POST an SNS message with the headers SNS sends (text/plain JSON body), signed as SNS signs it unless
    ``sign`` is false (a test of what is not signed)."""
    if sign:
        notification = sns_signed(notification)
    return post(
        SES_URL,
        json.dumps(notification),
        "text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=notification.get("Type", ""),
        HTTP_X_AMZ_SNS_MESSAGE_ID=notification.get("MessageId", ""),
        HTTP_X_AMZ_SNS_TOPIC_ARN=notification.get("TopicArn", ""),
        **headers,
    )


def sns_notification_of(message) -> dict:
    """SNS's documented Notification, carrying ``message`` (an SES notification, or any JSON) in ``Message``."""
    notification = fixture_json("amazon_ses/sns_notification.json")
    notification["Message"] = message if isinstance(message, str) else json.dumps(message)
    notification["MessageId"] = str(uuid.uuid4())
    return notification


@pytest.fixture(autouse=True)
def anymail_settings(settings):
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": [WEBHOOK_SECRET],
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": True,
        "AMAZON_SES_INBOUND_TOPIC_ARNS": [],
    }
    settings.EMAIL_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = 300
    return settings


@pytest.fixture
def channel():
    return ChannelFactory(
        kind=Channel.Kind.EMAIL, name="Support", address="support@desk.example", continue_open_ticket=False
    )


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """Posts like the provider, running the on-commit processing task (eager Celery) as a real commit would."""

    def post(url, body, content_type, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return client.generic("POST", url, body, content_type=content_type, **headers)

    return post
