"""Bad provider posts never answer 5xx: each is refused with a 4xx and a ``{"detail": ...}`` reason, in the status
that stops that provider's retries (Mailgun 406, Postmark 403, SendGrid and SNS any 4xx), and nothing is stored;
a message that arrives in an unusual but valid form (Mailgun's body-mime as a file part) is stored. A message
rebuilt from a provider's parsed fields with no Message-ID is stored once however often the provider retries it.

Driven with the providers' own sample and recorded payloads (tests/fixtures/<provider>/README.md).
"""

import base64
import json
import uuid

import boto3
import pytest
from botocore.stub import Stubber

from channels_app.models import Channel, InboundEvent, WebhookNonce
from channels_app.providers.email import webhook_views
from tests.channels_app import email_webhook_posts
from tests.channels_app.email_webhook_posts import (
    MAILGUN_PARSED_URL,
    MAILGUN_URL,
    POSTMARK_URL,
    SENDGRID_URL,
    basic_auth,
    fixture_bytes,
    fixture_json,
    mailgun_mime_fields,
    mailgun_signed,
    multipart,
    sns_notification_of,
    sns_post,
)
from tests.factories import ChannelFactory
from tickets.models import Message

pytestmark = pytest.mark.django_db
anymail_settings, channel, post = (
    email_webhook_posts.anymail_settings,
    email_webhook_posts.channel,
    email_webhook_posts.post,
)

RAW = (
    b"From: Ann Lee <ann@example.com>\r\nTo: support@desk.example\r\nSubject: Order late\r\n"
    b"Message-ID: <file-part@mail.example>\r\n\r\nOrder A-1 has not arrived.\r\n"
)


def assert_refused(response, status, *, words=""):
    assert response.status_code == status, response.content
    assert words in response.json()["detail"]
    assert not InboundEvent.objects.exists()
    assert not Message.objects.exists()
    assert not WebhookNonce.objects.filter(accepted_at__isnull=False).exists()


# --- Mailgun ------------------------------------------------------------------------------------------------------


def test_mailgun_body_mime_as_a_file_part_is_stored_as_the_message(post, channel):
    fields = mailgun_signed({"recipient": "support@desk.example", "sender": "ann@example.com"})
    body, content_type = multipart(fields, files={"body-mime": ("message.eml", RAW)})

    response = post(MAILGUN_URL, body, content_type, **basic_auth())

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert bytes(event.raw) == RAW
    assert event.provider_id == "<file-part@mail.example>"
    assert Message.objects.get().text.strip() == "Order A-1 has not arrived."


def test_mailgun_body_mime_that_is_not_mime_is_refused(post, channel):
    fields = mailgun_signed(mailgun_mime_fields(body_mime="hello, this is not an email at all"))

    assert_refused(post(MAILGUN_URL, *multipart(fields), **basic_auth()), 406, words="no email message")


def test_mailgun_json_tracking_event_on_the_inbound_url_is_refused(post, channel):
    event = fixture_json("mailgun/tracking_opened.json")
    event["signature"].update(mailgun_signed({}))

    response = post(MAILGUN_URL, json.dumps(event), "application/json", **basic_auth())

    assert_refused(response, 406, words="tracking events")


def test_mailgun_legacy_tracking_form_on_the_inbound_url_is_refused(post, channel):
    fields = mailgun_signed(fixture_json("mailgun/tracking_delivered_legacy.json"))

    response = post(MAILGUN_PARSED_URL, *multipart(fields), **basic_auth())

    assert_refused(response, 406, words="'delivered' tracking event")


@pytest.mark.parametrize(
    ("token", "timestamp", "status"),
    [
        ("jeton-\u00e9t\u00e9", None, 400),  # anymail's HMAC encodes the token as ASCII
        ("t" * 300, None, 400),
        (None, "soon", 406),  # signed, but not a Unix time
        (None, "9" * 14, 406),  # past the year 9999
        (None, "9" * 5000, 400),  # int() refuses 4,300+ digits
    ],
    ids=["non-ascii-token", "long-token", "word-timestamp", "far-timestamp", "huge-timestamp"],
)
def test_mailgun_malformed_signature_fields_are_refused(post, channel, token, timestamp, status):
    fields = mailgun_signed(mailgun_mime_fields(), token=token, timestamp=timestamp)

    assert_refused(post(MAILGUN_URL, *multipart(fields), **basic_auth()), status)


def test_mailgun_parsed_form_with_bad_message_headers_is_refused(post, channel):
    fields = fixture_json("mailgun/inbound_parsed.json")
    fields["message-headers"] = "[not json"

    response = post(MAILGUN_PARSED_URL, *multipart(mailgun_signed(fields)), **basic_auth())

    assert_refused(response, 406, words="could not be read")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/x-www-form-urlencoded"),
        (b"just some text", "text/plain"),
        (b"--x\r\nnot a part", "multipart/form-data"),  # no boundary parameter
        (b"\xff\xfe\x00garbage", "multipart/form-data; boundary=zzz"),
    ],
    ids=["empty", "text", "no-boundary", "garbage-multipart"],
)
def test_mailgun_body_that_is_not_a_form_is_refused(post, channel, body, content_type):
    response = post(MAILGUN_URL, body, content_type, **basic_auth())

    assert_refused(response, 400)


def test_a_form_field_over_the_size_limit_is_refused_with_413(post, channel, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    fields = mailgun_signed(mailgun_mime_fields(body_mime="Subject: big\n\n" + "x" * 20_000))
    body, content_type = multipart(fields)

    response = post(MAILGUN_URL, body, content_type, **basic_auth())

    assert_refused(response, 413)


def test_mailgun_parsed_form_without_message_id_is_stored_once_however_often_retried(post, channel):
    fields = fixture_json("mailgun/inbound_parsed.json")
    fields["recipient"] = "support@desk.example"
    headers = [header for header in json.loads(fields["message-headers"]) if header[0] != "Message-Id"]
    fields["message-headers"] = json.dumps(headers)

    # Each retry is signed anew here (new token); either way the rebuilt message is keyed on Mailgun's fields.
    for _ in range(3):
        response = post(MAILGUN_PARSED_URL, *multipart(mailgun_signed(fields)), **basic_auth())
        assert response.status_code == 200

    event = InboundEvent.objects.get()
    assert event.provider_id.endswith("@mailgun.inbound.invalid>")
    assert Message.objects.get().provider_id == event.provider_id


# --- Postmark -----------------------------------------------------------------------------------------------------


def postmark_inbound(**changes) -> dict:
    payload = fixture_json("postmark/inbound.json")
    payload["OriginalRecipient"] = "support@desk.example"
    payload.update(changes)
    return payload


def post_postmark(post, body):
    return post(POSTMARK_URL, body if isinstance(body, str) else json.dumps(body), "application/json", **basic_auth())


def test_postmarks_own_inbound_example_is_stored(post, channel):
    assert post_postmark(post, postmark_inbound()).status_code == 200

    event = InboundEvent.objects.get()
    assert event.provider_id == "<73e6d360-66eb-11e1-8e72-a8904824019b@postmark.inbound.invalid>"
    assert Message.objects.get().text == "This is a test text body."


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1,2,3]",
        "{}",
        '"text"',
        "null",
        "5",
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
    ],
    ids=["not-json", "array", "empty-object", "string", "null", "number", "deep-array", "deep-object"],
)
def test_postmark_post_that_is_no_message_is_refused_with_403_so_postmark_stops(post, channel, body):
    response = post_postmark(post, body)

    assert_refused(response, 403)


def test_postmark_empty_object_is_not_an_endless_503(post, channel):
    response = post_postmark(post, {})

    assert_refused(response, 403, words="holds no email message")


@pytest.mark.parametrize(
    "changes",
    [
        {"Headers": "X-Spam: yes"},
        {"Attachments": [{"Name": "a.txt"}]},
        {"FromFull": "support@postmarkapp.com"},
        {"ToFull": [1, 2]},
        {"RawEmail": 5},
        {"Headers": [{"Name": 1, "Value": 2}]},
    ],
)
def test_postmark_fields_of_the_wrong_shape_are_refused(post, channel, changes):
    assert_refused(post_postmark(post, postmark_inbound(**changes)), 403)


def test_postmark_original_recipient_of_the_wrong_shape_is_ignored_for_the_headers(post, channel):
    to = [{"Email": "support@desk.example", "Name": "", "MailboxHash": ""}]
    payload = postmark_inbound(OriginalRecipient=["someone@else.example"], ToFull=to)

    assert post_postmark(post, payload).status_code == 200

    assert InboundEvent.objects.get().channel == channel


def test_postmark_text_with_a_lone_surrogate_is_stored(post, channel):
    body = json.dumps(postmark_inbound()).replace("This is a test text body.", "Broken \\ud800 text.")

    assert post_postmark(post, body).status_code == 200

    assert Message.objects.get().text == "Broken \ufffd text."


def test_postmark_delivery_tracking_event_on_the_inbound_url_is_refused(post, channel):
    response = post_postmark(post, fixture_json("postmark/delivery.json"))

    assert_refused(response, 403, words="*Delivery* webhook")


def test_postmark_without_message_id_or_postmarks_id_is_stored_once(post, channel):
    payload = postmark_inbound()
    del payload["MessageID"]

    for _ in range(3):
        assert post_postmark(post, payload).status_code == 200

    assert InboundEvent.objects.get().provider_id.endswith("@postmark.inbound.invalid>")


# --- SendGrid -----------------------------------------------------------------------------------------------------


def test_sendgrid_event_webhook_posted_to_inbound_parse_is_refused(post, channel):
    response = post(
        SENDGRID_URL, json.dumps(fixture_json("sendgrid/event_webhook.json")), "application/json", **basic_auth()
    )

    assert_refused(response, 400, words="Event Webhook")


def test_sendgrid_form_with_neither_headers_nor_email_is_refused(post, channel):
    response = post(SENDGRID_URL, *multipart({"to": "support@desk.example"}), **basic_auth())

    assert_refused(response, 400, words="neither")


def test_sendgrid_recorded_parsed_post_without_message_id_is_stored_once_on_retries(post):
    inbound = ChannelFactory(kind=Channel.Kind.EMAIL, address="inbound@sg.example.com")
    body = fixture_bytes("sendgrid/inbound_parsed_charsets.multipart")

    # SendGrid retries the same post; it has no Message-ID and SendGrid gives no event id.
    for _ in range(3):
        response = post(SENDGRID_URL, body, "multipart/form-data; boundary=xYzZY", **basic_auth())
        assert response.status_code == 200

    event = InboundEvent.objects.get()
    assert event.channel == inbound
    assert event.provider_id.endswith("@sendgrid.inbound.invalid>")
    assert Message.objects.get().text == "Test the ESP\u2019s inbound charset handling\u2026"


def test_sendgrid_raw_post_is_stored(post):
    ChannelFactory(kind=Channel.Kind.EMAIL, address="test@inbound.example.com")
    fields = fixture_json("sendgrid/inbound_raw.json")

    assert post(SENDGRID_URL, *multipart(fields), **basic_auth()).status_code == 200

    assert InboundEvent.objects.get().provider_id == "<CAEPk3RKEx@mail.example.org>"


def test_sendgrid_parsed_post_in_an_unknown_charset_is_refused(post, channel):
    body = fixture_bytes("sendgrid/inbound_parsed_charsets.multipart").replace(
        b'"text":"windows-1252"', b'"text":"x-no-such"'
    )

    response = post(SENDGRID_URL, body, "multipart/form-data; boundary=xYzZY", **basic_auth())

    assert_refused(response, 400, words="LookupError")


# --- Amazon SES through SNS ---------------------------------------------------------------------------------------


def ses_received(**changes) -> dict:
    ses_event = fixture_json("amazon_ses/received_sns_action.json")
    ses_event["receipt"]["recipients"] = ["support@desk.example"]
    ses_event.update(changes)
    return ses_event


def test_ses_own_receipt_example_is_stored(post, channel):
    assert sns_post(post, sns_notification_of(ses_received()), **basic_auth()).status_code == 200

    assert InboundEvent.objects.get().provider_id == "<61967230-7A45-4A9D-BEC9-87CBCF2211C9@example.com>"
    assert Message.objects.get().text.strip() == "Example content"


@pytest.mark.parametrize("name", ["bounce_with_dsn", "complaint_with_feedback", "delivery"])
def test_ses_tracking_notifications_on_the_inbound_url_are_refused(post, channel, name):
    notification = sns_notification_of(fixture_json(f"amazon_ses/{name}.json"))

    response = sns_post(post, notification, **basic_auth())

    assert_refused(response, 400, words="*sending* event or notification")


@pytest.mark.parametrize(
    "message",
    [
        "Hello world!",  # SNS's own example Message: not an SES notification
        "[1, 2, 3]",
        json.dumps(ses_received(content=12345)),
        json.dumps(
            ses_received(
                content="!!! not base64 !!!",
                receipt={**ses_received()["receipt"], "action": {"type": "SNS", "encoding": "BASE64"}},
            )
        ),
        json.dumps(
            ses_received(
                content="\u00e9t\u00e9",
                receipt={**ses_received()["receipt"], "action": {"type": "SNS", "encoding": "BASE64"}},
            )
        ),
        json.dumps(ses_received(receipt="not an object")),
        json.dumps(ses_received(content="hello, not an email")),
    ],
    ids=["sns-example", "array", "content-number", "bad-base64", "non-ascii-base64", "receipt-string", "not-mime"],
)
def test_ses_notifications_that_are_no_message_are_refused(post, channel, message):
    response = sns_post(post, sns_notification_of(message), **basic_auth())

    assert_refused(response, 400)


def test_sns_unsubscribe_confirmation_is_answered_200_and_ignored(post, channel):
    response = sns_post(post, fixture_json("amazon_ses/sns_unsubscribe_confirmation.json"), **basic_auth())

    assert response.status_code == 200
    assert not InboundEvent.objects.exists()


def test_sns_message_of_an_unknown_type_is_refused(post, channel):
    notification = {**fixture_json("amazon_ses/sns_notification.json"), "Type": "SomethingNew"}

    assert_refused(sns_post(post, notification, **basic_auth()), 400)


def test_sns_body_that_is_not_json_is_refused(post, channel):
    response = post(
        "/inbound/email/amazon_ses/inbound/",
        "{not json",
        "text/plain",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
        HTTP_X_AMZ_SNS_MESSAGE_ID=str(uuid.uuid4()),
        **basic_auth(),
    )

    assert_refused(response, 400)


def _sns_client(monkeypatch):
    sns = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test").client(
        "sns", region_name="us-west-2"
    )
    monkeypatch.setattr(webhook_views.AmazonSESInboundEmailView, "get_boto_client", lambda self, name, **kw: sns)
    return sns


def test_sns_subscription_confirmation_that_aws_refuses_answers_a_retryable_503(post, channel, monkeypatch):
    confirmation = fixture_json("amazon_ses/sns_subscription_confirmation.json")
    stubber = Stubber(_sns_client(monkeypatch))
    stubber.add_client_error("confirm_subscription", service_error_code="InternalError", http_status_code=500)

    with stubber:
        response = sns_post(post, confirmation, **basic_auth())

    assert response.status_code == 503
    assert "SNS console" in response.json()["detail"]
    assert not InboundEvent.objects.exists()


def test_sns_subscription_confirmation_is_confirmed_with_aws(post, channel, monkeypatch):
    confirmation = fixture_json("amazon_ses/sns_subscription_confirmation.json")
    stubber = Stubber(_sns_client(monkeypatch))
    stubber.add_response(
        "confirm_subscription",
        {"SubscriptionArn": confirmation["TopicArn"] + ":sub-1"},
        {"TopicArn": confirmation["TopicArn"], "Token": confirmation["Token"], "AuthenticateOnUnsubscribe": "true"},
    )

    with stubber:
        response = sns_post(post, confirmation, **basic_auth())
        stubber.assert_no_pending_responses()

    assert response.status_code == 200


@pytest.mark.parametrize("changes", [{"TopicArn": "not-an-arn"}, {"Token": ""}, {"TopicArn": 5}])
def test_sns_subscription_confirmation_without_a_valid_topic_or_token_is_refused(post, channel, changes):
    confirmation = {**fixture_json("amazon_ses/sns_subscription_confirmation.json"), **changes}

    assert_refused(sns_post(post, confirmation, **basic_auth()), 400)


def test_ses_base64_content_is_stored_exactly(post, channel):
    raw = fixture_json("amazon_ses/received_sns_action.json")["content"].encode()
    receipt = {**ses_received()["receipt"], "action": {"type": "SNS", "encoding": "BASE64"}}
    ses_event = ses_received(content=base64.b64encode(raw).decode(), receipt=receipt)

    assert sns_post(post, sns_notification_of(ses_event), **basic_auth()).status_code == 200

    assert bytes(InboundEvent.objects.get().raw) == raw
