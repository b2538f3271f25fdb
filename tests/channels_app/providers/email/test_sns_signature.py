"""SES posts arrive through SNS, which signs each message: a post is taken only with SNS's signature over its
content (checked with the certificate from AWS's host) and a Timestamp within the tolerance, so a captured post
cannot be replayed with other content or later than SNS itself would retry it."""

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from channels_app.models import InboundEvent
from channels_app.providers.email import sns_signature
from tests.channels_app import email_webhook_posts
from tests.channels_app.email_webhook_posts import (
    basic_auth,
    fixture_json,
    sns_notification_of,
    sns_post,
)
from tests.channels_app.sns_signing import CERT_URL, aws_certificate_host, sns_signed
from tickets.models import Message

pytestmark = pytest.mark.django_db
anymail_settings, channel, post = (
    email_webhook_posts.anymail_settings,
    email_webhook_posts.channel,
    email_webhook_posts.post,
)


def ses_received() -> dict:
    ses_event = fixture_json("amazon_ses/received_sns_action.json")
    ses_event["receipt"]["recipients"] = ["support@desk.example"]
    return ses_event


def refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.content
    assert words in response.json()["detail"]
    assert not InboundEvent.objects.exists()
    assert not Message.objects.exists()


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_post_signed_by_sns_is_taken(post, channel, version):
    notification = sns_signed(sns_notification_of(ses_received()), version=version)

    response = sns_post(post, notification, sign=False, **basic_auth())

    assert response.status_code == 200, response.content
    assert Message.objects.get().text.strip() == "Example content"


def test_the_recorded_example_with_its_unverifiable_signature_is_refused(post, channel):
    # AWS's documented example carries a placeholder signature and a certificate we cannot have: not signed for us.
    notification = sns_notification_of(ses_received())

    refused(sns_post(post, notification, sign=False, **basic_auth()), 400, "SNS")


def test_content_changed_after_signing_is_refused(post, channel):
    notification = sns_signed(sns_notification_of(ses_received()))
    forged = ses_received()
    forged["content"] = base64.b64encode(b"From: ceo@desk.example\n\nWire the money.\n").decode()
    notification["Message"] = json.dumps(forged)

    refused(sns_post(post, notification, sign=False, **basic_auth()), 400, "does not match its content")


def test_a_post_signed_longer_ago_than_sns_retries_is_a_replay(post, channel, settings):
    signed_at = datetime.now(UTC) - timedelta(seconds=settings.EMAIL_WEBHOOK_SNS_TOLERANCE_SECONDS + 60)
    notification = sns_signed(sns_notification_of(ses_received()), timestamp=signed_at)

    refused(sns_post(post, notification, sign=False, **basic_auth()), 400, "a replay")


def test_snss_own_retry_half_an_hour_later_is_taken_once(post, channel):
    notification = sns_signed(sns_notification_of(ses_received()), timestamp=datetime.now(UTC) - timedelta(minutes=30))

    first = sns_post(post, notification, sign=False, **basic_auth())
    again = sns_post(post, notification, sign=False, **basic_auth())

    assert (first.status_code, again.status_code) == (200, 200)
    assert InboundEvent.objects.count() == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.txt",
    ],
)
def test_a_certificate_from_anywhere_but_aws_is_not_fetched(post, channel, monkeypatch, url):
    fetched = []

    def attackers_host():
        return httpx.MockTransport(lambda request: fetched.append(str(request.url)) or httpx.Response(500))

    monkeypatch.setattr(sns_signature, "sns_certificate_transport", attackers_host)
    notification = sns_signed(sns_notification_of(ses_received()))
    notification["SigningCertURL"] = url

    refused(sns_post(post, notification, sign=False, **basic_auth()), 400, "not an SNS certificate URL")
    assert fetched == []


def test_aws_unreachable_for_the_certificate_is_a_503_sns_retries(post, channel, monkeypatch):
    def down(request):
        raise httpx.ConnectError("no route to host", request=request)

    monkeypatch.setattr(sns_signature, "sns_certificate_transport", lambda: httpx.MockTransport(down))

    response = sns_post(post, sns_notification_of(ses_received()), **basic_auth())

    refused(response, 503, "could not be fetched")


def test_the_certificate_is_fetched_once_per_process(post, channel, monkeypatch):
    fetched = []
    host = aws_certificate_host()

    def counting():
        return httpx.MockTransport(lambda request: fetched.append(str(request.url)) or host.handle_request(request))

    monkeypatch.setattr(sns_signature, "sns_certificate_transport", counting)

    for _ in range(3):
        assert sns_post(post, sns_notification_of(ses_received()), **basic_auth()).status_code == 200

    assert fetched == [CERT_URL]


def test_a_notification_without_subject_is_signed_without_it():
    text = sns_signature.sns_string_to_sign(
        {"Type": "Notification", "Message": "m", "MessageId": "1", "Timestamp": "t", "TopicArn": "arn"}
    )

    assert text == b"Message\nm\nMessageId\n1\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
