"""Inbound email webhooks (Mailgun, Postmark, SendGrid, Amazon SES through django-anymail): each provider's
authentication, the raw MIME stored exactly as posted, once per Message-ID, on the recipient's channel, then parsed
onto a ticket by the (eager) task.

Payloads are built the way each provider posts them: Mailgun's forward() route to a ``mime`` URL (multipart form,
HMAC-SHA256 of timestamp+token), Postmark's inbound JSON, SendGrid's Inbound Parse with "POST the raw, full MIME
message", and an SNS notification for an SES receipt rule's SNS action. Only AWS's API (SNS ConfirmSubscription)
is stubbed, with botocore's Stubber.
"""

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid

import boto3
import pytest
from anymail.inbound import AnymailInboundMessage
from botocore.stub import Stubber

from channels_app.models import Channel, InboundEvent
from channels_app.providers.email import webhook_views
from customers.models import CustomerIdentity
from tests.channels_app import email_webhook_posts
from tests.channels_app.email_webhook_posts import (
    MAILGUN_URL,
    POSTMARK_URL,
    SENDGRID_URL,
    SIGNING_KEY,
    basic_auth,
    multipart,
    sns_post,
)
from tests.factories import ChannelFactory
from tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db
anymail_settings, channel, post = (
    email_webhook_posts.anymail_settings,
    email_webhook_posts.channel,
    email_webhook_posts.post,
)

TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:ses-inbound"


def raw_email(*, message_id="<m1@mail.example>", to="support@desk.example", charset="iso-8859-1") -> bytes:
    """A message whose body is not valid UTF-8 (Latin-1 'é'), unless ``charset`` says utf-8."""
    body = "Café order A-1 has not arrived.\r\n".encode(charset)
    return (
        b"Return-Path: <ann@example.com>\r\n"
        b"From: Ann Lee <ann@example.com>\r\n"
        b"To: " + to.encode() + b"\r\n"
        b"Subject: Order late\r\n"
        b"Message-ID: " + message_id.encode() + b"\r\n"
        b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + body
    )


# --- Mailgun ------------------------------------------------------------------------------------------------------


def mailgun_form(
    raw: bytes, *, recipient="support@desk.example", key=SIGNING_KEY, token=None, timestamp=None, **overrides
):
    """A route's forward() post, signed as Mailgun documents: HMAC-SHA256 of timestamp + token (now, by default)."""
    token = token or uuid.uuid4().hex
    timestamp = timestamp or str(int(time.time()))
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    fields = {
        "recipient": recipient,
        "sender": "ann@example.com",
        "from": "Ann Lee <ann@example.com>",
        "subject": "Order late",
        "body-mime": raw,
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
    }
    fields.update(overrides)
    return multipart({name: value for name, value in fields.items() if value is not None})


def assert_ingested(channel, raw: bytes, provider_id="<m1@mail.example>"):
    event = InboundEvent.objects.get()
    assert event.channel == channel
    assert bytes(event.raw) == raw
    assert event.provider_id == provider_id
    assert event.content_type == "message/rfc822"
    assert event.status == InboundEvent.Status.PROCESSED, event.reason
    message = Message.objects.get()
    assert message.ticket == Ticket.objects.get()
    assert message.channel == channel
    assert message.direction == Message.Direction.INBOUND
    assert message.provider_id == provider_id
    assert "order A-1 has not arrived." in message.text
    identity = CustomerIdentity.objects.get(customer=message.customer, kind="email")
    assert identity.value == "ann@example.com"
    return message


def test_mailgun_raw_mime_is_stored_byte_for_byte_and_becomes_a_ticket(post, channel):
    raw = raw_email()
    body, content_type = mailgun_form(raw)

    response = post(MAILGUN_URL, body, content_type, **basic_auth())

    assert response.status_code == 200
    message = assert_ingested(channel, raw)
    assert message.text.startswith("Café order")


def test_mailgun_retry_of_the_same_message_creates_one_event(post, channel):
    raw = raw_email()
    for _ in range(2):  # a retry carries a new token and signature, the same message
        body, content_type = mailgun_form(raw)
        assert post(MAILGUN_URL, body, content_type, **basic_auth()).status_code == 200

    assert InboundEvent.objects.count() == 1
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"key": "key-someone-else"},
        {"signature": None},
        {"token": None, "timestamp": None, "signature": None},
    ],
    ids=["wrong-key", "no-signature", "no-security-fields"],
)
def test_mailgun_bad_or_missing_signature_is_refused_and_stores_nothing(post, channel, overrides):
    key = overrides.pop("key", SIGNING_KEY)
    body, content_type = mailgun_form(raw_email(), key=key, **overrides)

    response = post(MAILGUN_URL, body, content_type, **basic_auth())

    assert response.status_code == 400
    assert not InboundEvent.objects.exists()
    assert not Message.objects.exists()


def test_mailgun_route_without_the_webhook_secret_is_refused_when_one_is_set(post, channel):
    # anymail checks WEBHOOK_SECRET for every provider: Mailgun's route URL carries it as https://user:pass@host/.
    body, content_type = mailgun_form(raw_email())

    assert post(MAILGUN_URL, body, content_type).status_code == 400
    assert not InboundEvent.objects.exists()


def test_mailgun_without_a_signing_key_configured_answers_503_so_mailgun_retries(post, channel, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_WEBHOOK_SIGNING_KEY": ""}
    # Signed with the empty key: anymail alone would accept it.
    body, content_type = mailgun_form(raw_email(), key="")

    response = post(MAILGUN_URL, body, content_type, **basic_auth())

    assert response.status_code == 503
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in response.json()["detail"]
    assert not InboundEvent.objects.exists()


def test_mailgun_parsed_form_is_stored_as_anymail_rebuilds_it(post, channel):
    headers = [
        ["From", "Ann Lee <ann@example.com>"],
        ["To", "support@desk.example"],
        ["Subject", "Order late"],
        ["Message-Id", "<m1@mail.example>"],
    ]
    body, content_type = mailgun_form(
        b"",
        **{"body-mime": None, "message-headers": json.dumps(headers), "body-plain": "Café order A-1 has not arrived."},
    )

    response = post(MAILGUN_URL.replace("_mime", ""), body, content_type, **basic_auth())

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert b"Message-Id: <m1@mail.example>" in bytes(event.raw)
    assert event.provider_id == "<m1@mail.example>"
    assert Message.objects.get().text == "Café order A-1 has not arrived."


@pytest.mark.parametrize("provider", ["mailgun", "sendgrid", "amazon_ses"])
def test_a_message_anymail_cannot_parse_is_still_stored_raw(provider, post, channel, monkeypatch):
    # No message in the corpus makes anymail's parse raise today; this stands in for one that does.
    def broken(cls, data):
        raise ValueError("anymail could not parse this")

    for name in ("parse_raw_mime", "parse_raw_mime_bytes"):
        monkeypatch.setattr(AnymailInboundMessage, name, classmethod(broken))
    raw = raw_email()
    if provider == "mailgun":
        response = post(MAILGUN_URL, *mailgun_form(raw), **basic_auth())
    elif provider == "sendgrid":
        response = post(SENDGRID_URL, *multipart(_without_none(_sendgrid_fields(raw))), **basic_auth())
    else:
        response = sns_post(post, sns_notification(raw), **basic_auth())

    assert response.status_code == 200
    assert_ingested(channel, raw)


# --- Postmark -----------------------------------------------------------------------------------------------------


def postmark_payload(*, raw: bytes | None, recipient="support@desk.example") -> dict:
    payload = {
        "FromName": "Ann Lee",
        "MessageStream": "inbound",
        "From": "ann@example.com",
        "FromFull": {"Email": "ann@example.com", "Name": "Ann Lee", "MailboxHash": ""},
        "To": recipient,
        "ToFull": [{"Email": recipient, "Name": "", "MailboxHash": ""}],
        "Cc": "",
        "CcFull": [],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": recipient,
        "Subject": "Order late",
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": "Mon, 2 Nov 2026 10:00:00 +0000",
        "TextBody": "Café order A-1 has not arrived.",
        "HtmlBody": "",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "Return-Path", "Value": "<ann@example.com>"},
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "X-Spam-Score", "Value": "-0.1"},
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": "<m1@mail.example>"},
        ],
        "Attachments": [],
    }
    if raw is not None:
        payload["RawEmail"] = raw.decode("utf-8")
    return payload


def test_postmark_raw_email_is_stored_exactly(post, channel):
    raw = raw_email(charset="utf-8")

    response = post(POSTMARK_URL, json.dumps(postmark_payload(raw=raw)), "application/json", **basic_auth())

    assert response.status_code == 200
    assert_ingested(channel, raw)


def test_postmark_without_raw_email_stores_the_rebuilt_message(post, channel):
    payload = postmark_payload(raw=None)

    response = post(POSTMARK_URL, json.dumps(payload), "application/json", **basic_auth())

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.provider_id == "<m1@mail.example>"
    assert b"Subject: Order late" in bytes(event.raw)
    assert Message.objects.get().text == "Café order A-1 has not arrived."
    # Postmark retries the same JSON: the rebuilt message keys on the same Message-ID.
    assert post(POSTMARK_URL, json.dumps(payload), "application/json", **basic_auth()).status_code == 200
    assert InboundEvent.objects.count() == 1


def test_postmark_rebuilt_message_without_message_id_keys_on_postmarks_id(post, channel):
    payload = postmark_payload(raw=None)
    payload["Headers"] = [header for header in payload["Headers"] if header["Name"] != "Message-ID"]

    for _ in range(2):
        assert post(POSTMARK_URL, json.dumps(payload), "application/json", **basic_auth()).status_code == 200

    event = InboundEvent.objects.get()
    assert event.provider_id == "<73e6d360-66eb-11e1-8e72-a8904824019b@postmark.inbound.invalid>"
    assert Message.objects.count() == 1


@pytest.mark.parametrize("headers", [{}, basic_auth("desk:wrong"), basic_auth("someone:s3cret-webhook")])
def test_postmark_bad_or_missing_basic_auth_is_refused(post, channel, headers):
    raw = raw_email(charset="utf-8")

    response = post(POSTMARK_URL, json.dumps(postmark_payload(raw=raw)), "application/json", **headers)

    assert response.status_code == 400
    assert not InboundEvent.objects.exists()


def test_postmark_without_a_webhook_secret_configured_answers_503(post, channel, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": []}

    response = post(POSTMARK_URL, json.dumps(postmark_payload(raw=raw_email(charset="utf-8"))), "application/json")

    assert response.status_code == 503
    assert "ANYMAIL_WEBHOOK_SECRET" in response.json()["detail"]
    assert not InboundEvent.objects.exists()


def test_storing_a_webhook_message_takes_a_fixed_number_of_queries(client, channel, django_assert_max_num_queries):
    body = json.dumps(postmark_payload(raw=raw_email(charset="utf-8")))
    # Channel lookup, then the insert inside a savepoint; processing runs after commit, in the task.
    with django_assert_max_num_queries(4):
        response = client.post(POSTMARK_URL, body, content_type="application/json", **basic_auth())
    assert response.status_code == 200
    assert InboundEvent.objects.get().status == InboundEvent.Status.RECEIVED


# --- SendGrid -----------------------------------------------------------------------------------------------------


def _without_none(fields):
    return {name: value for name, value in fields.items() if value is not None}


def test_sendgrid_raw_mime_is_stored_byte_for_byte(post, channel):
    raw = raw_email()
    body, content_type = multipart(_without_none(_sendgrid_fields(raw)))

    response = post(SENDGRID_URL, body, content_type, **basic_auth())

    assert response.status_code == 200
    assert_ingested(channel, raw)


def test_sendgrid_bad_basic_auth_is_refused(post, channel):
    body, content_type = multipart(_without_none(_sendgrid_fields(raw_email())))

    assert post(SENDGRID_URL, body, content_type, **basic_auth("desk:guess")).status_code == 400
    assert post(SENDGRID_URL, body, content_type).status_code == 400
    assert not InboundEvent.objects.exists()


def _sendgrid_fields(raw: bytes, recipient="support@desk.example") -> dict:
    return {
        "dkim": "{@example.com : pass}",
        "email": raw,
        "to": recipient,
        "from": "Ann Lee <ann@example.com>",
        "sender_ip": "192.0.2.10",
        "spam_report": "",
        "envelope": json.dumps({"to": [recipient], "from": "ann@example.com"}),
        "subject": "Order late",
        "spam_score": "0.1",
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
        "SPF": "pass",
    }


# --- Amazon SES (SNS action) --------------------------------------------------------------------------------------


def sns_notification(raw: bytes, *, encoding="BASE64", action_type="SNS", recipient="support@desk.example") -> dict:
    content = base64.b64encode(raw).decode() if encoding == "BASE64" else raw.decode("utf-8")
    action = {"type": action_type, "topicArn": TOPIC_ARN, "encoding": encoding}
    if action_type == "S3":
        action = {"type": "S3", "topicArn": TOPIC_ARN, "bucketName": "desk-inbound", "objectKey": "mail/abc"}
    ses_event = {
        "notificationType": "Received",
        "mail": {
            "timestamp": "2026-11-02T10:00:00.000Z",
            "source": "ann@example.com",
            "messageId": "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1",
            "destination": [recipient],
            "headersTruncated": False,
            "headers": [{"name": "From", "value": "Ann Lee <ann@example.com>"}],
            "commonHeaders": {"from": ["Ann Lee <ann@example.com>"], "to": [recipient], "subject": "Order late"},
        },
        "receipt": {
            "timestamp": "2026-11-02T10:00:00.000Z",
            "processingTimeMillis": 222,
            "recipients": [recipient],
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"},
            "dkimVerdict": {"status": "PASS"},
            "dmarcVerdict": {"status": "PASS"},
            "action": action,
        },
    }
    if action_type == "SNS":
        ses_event["content"] = content
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC_ARN,
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-11-02T10:00:01.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+..",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


@pytest.mark.parametrize(("encoding", "charset"), [("BASE64", "iso-8859-1"), ("UTF8", "utf-8")])
def test_ses_sns_content_is_stored_exactly(post, channel, encoding, charset):
    raw = raw_email(charset=charset)

    response = sns_post(post, sns_notification(raw, encoding=encoding), **basic_auth())

    assert response.status_code == 200
    assert_ingested(channel, raw)


def test_ses_redelivered_notification_creates_one_event(post, channel):
    raw = raw_email()
    for _ in range(2):  # SNS retries with a new notification id
        assert sns_post(post, sns_notification(raw), **basic_auth()).status_code == 200
    assert InboundEvent.objects.count() == 1
    assert Message.objects.count() == 1


def test_ses_without_credentials_gets_the_401_challenge_sns_needs(post, channel):
    response = sns_post(post, sns_notification(raw_email()))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert not InboundEvent.objects.exists()


def test_ses_wrong_credentials_are_refused(post, channel):
    assert sns_post(post, sns_notification(raw_email()), **basic_auth("desk:nope")).status_code == 400
    assert not InboundEvent.objects.exists()


def test_ses_notification_from_another_topic_is_refused_when_topics_are_listed(post, channel, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "AMAZON_SES_INBOUND_TOPIC_ARNS": ["arn:aws:sns:eu-west-1:1:other"]}

    response = sns_post(post, sns_notification(raw_email()), **basic_auth())

    assert response.status_code == 400
    assert not InboundEvent.objects.exists()


def test_ses_s3_action_is_refused_with_its_reason(post, channel):
    response = sns_post(post, sns_notification(raw_email(), action_type="S3"), **basic_auth())

    assert response.status_code == 400
    assert "S3" in response.json()["detail"]
    assert not InboundEvent.objects.exists()


def test_ses_subscription_confirmation_is_confirmed_with_aws(post, channel, monkeypatch):
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37fb687f5d51e6e2425",
        "TopicArn": TOPIC_ARN,
        "Message": "You have chosen to subscribe to the topic ...",
        "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37fb687f",
        "Timestamp": "2026-11-02T10:00:01.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+..",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem",
    }
    sns = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test").client(
        "sns", region_name="eu-west-1"
    )
    stubber = Stubber(sns)
    stubber.add_response(
        "confirm_subscription",
        {"SubscriptionArn": TOPIC_ARN + ":sub-1"},
        {"TopicArn": TOPIC_ARN, "Token": confirmation["Token"], "AuthenticateOnUnsubscribe": "true"},
    )
    regions = []

    def client(self, service_name, **kwargs):
        regions.append((service_name, kwargs.get("region_name")))
        return sns

    monkeypatch.setattr(webhook_views.AmazonSESInboundEmailView, "get_boto_client", client)

    with stubber:
        response = sns_post(post, confirmation, **basic_auth())
        stubber.assert_no_pending_responses()

    assert response.status_code == 200
    assert regions == [("sns", "eu-west-1")]
    assert not InboundEvent.objects.exists()


# --- Choosing the channel -----------------------------------------------------------------------------------------


def test_plus_address_and_case_reach_the_channel(post, channel):
    raw = raw_email(to="Support Desk <Support+t12-abc@Desk.Example>", charset="utf-8")
    payload = postmark_payload(raw=raw, recipient="Support+t12-abc@Desk.Example")

    assert post(POSTMARK_URL, json.dumps(payload), "application/json", **basic_auth()).status_code == 200

    assert InboundEvent.objects.get().channel == channel


def test_envelope_recipient_wins_over_the_to_header(post, channel):
    sales = ChannelFactory(kind=Channel.Kind.EMAIL, name="Sales", address="sales@desk.example")
    raw = raw_email()  # To: support@
    body, content_type = mailgun_form(raw, recipient="sales@desk.example")  # Bcc'd to sales

    assert post(MAILGUN_URL, body, content_type, **basic_auth()).status_code == 200

    assert InboundEvent.objects.get().channel == sales


def test_to_header_is_used_when_the_envelope_names_no_channel(post, channel):
    body, content_type = mailgun_form(raw_email(), recipient="alias@elsewhere.example")

    assert post(MAILGUN_URL, body, content_type, **basic_auth()).status_code == 200

    assert InboundEvent.objects.get().channel == channel


def test_mail_for_no_channel_is_refused_with_503_and_logged(post, channel, caplog):
    raw = raw_email(to="nobody@elsewhere.example")
    body, content_type = mailgun_form(raw, recipient="nobody@elsewhere.example")

    with caplog.at_level(logging.ERROR, logger="channels_app.providers.email.webhooks"):
        response = post(MAILGUN_URL, body, content_type, **basic_auth())

    assert response.status_code == 503
    assert "catch-all" in response.json()["detail"]
    assert not InboundEvent.objects.exists()
    ours = [record.message for record in caplog.records if record.name == "channels_app.providers.email.webhooks"]
    assert ours == ["channels_app.email_webhook_no_channel"]


def test_mail_for_no_channel_goes_to_the_catch_all_channel(post, channel):
    catch_all = ChannelFactory(
        kind=Channel.Kind.EMAIL, name="Everything else", address="inbox@desk.example", settings={"catch_all": True}
    )
    raw = raw_email(to="nobody@elsewhere.example")
    body, content_type = mailgun_form(raw, recipient="nobody@elsewhere.example")

    assert post(MAILGUN_URL, body, content_type, **basic_auth()).status_code == 200

    assert InboundEvent.objects.get().channel == catch_all


def test_a_disabled_channel_takes_no_mail(post, channel):
    Channel.objects.filter(pk=channel.pk).update(is_active=False)
    body, content_type = mailgun_form(raw_email())

    assert post(MAILGUN_URL, body, content_type, **basic_auth()).status_code == 503
    assert not InboundEvent.objects.exists()
