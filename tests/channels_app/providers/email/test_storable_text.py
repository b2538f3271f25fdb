"""Email with what PostgreSQL cannot store as parsed: a NUL in a body, a header or a file name, a lone surrogate that
the stdlib's parser leaves for an 8-bit byte in a header. Posted to the raw email endpoint (the path every MTA pipe
takes) or a provider's webhook, each lands on a timeline with its raw bytes kept, instead of failing on every
attempt. On real PostgreSQL."""

import json

import pytest
from rest_framework.test import APIClient

from agents.models import ApiToken
from agents.services import api_token_create
from channels_app.models import Channel, InboundEvent
from tests.channels_app.email_webhook_posts import POSTMARK_URL, WEBHOOK_SECRET, basic_auth
from tests.channels_app.providers.email.test_webhooks import postmark_payload
from tests.conftest import bearer, services_or_skip
from tests.factories import ChannelFactory
from tickets.models import Attachment, Message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgres():
    services_or_skip(need_postgres=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture
def email_channel():
    return ChannelFactory(
        kind=Channel.Kind.EMAIL, name="Support", address="support@desk.example", continue_open_ticket=False
    )


@pytest.fixture
def mta_client(email_channel) -> APIClient:
    token = api_token_create(name="mta", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=email_channel)
    return bearer(APIClient(), token.secret)


def post_raw(client, channel, raw: bytes, capture):
    with capture(execute=True):
        return client.generic("POST", f"/api/v1/channels/{channel.pk}/email/raw", raw, content_type="message/rfc822")


def email(*, sender=b"Ann Lee <ann@example.com>", subject=b"Order late", message_id=b"<m1@mail.example>", body=b"Hi"):
    return (
        b"From: " + sender + b"\r\n"
        b"To: support@desk.example\r\n"
        b"Subject: " + subject + b"\r\n"
        b"Message-ID: " + message_id + b"\r\n"
        b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n" + body + b"\r\n"
    )


def with_attachment(filename: bytes) -> bytes:
    return (
        b"From: Ann Lee <ann@example.com>\r\nTo: support@desk.example\r\nSubject: Invoice\r\n"
        b"Message-ID: <m1@mail.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
        b'--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="' + filename + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b--\r\n"
    )


CASES = {
    "NUL in the body": (email(body=b"Where\x00 is it?"), lambda m: m.text, "Where is it?\r\n"),
    "NUL in the subject": (email(subject=b"Order\x00 late"), lambda m: m.ticket.subject, "Order late"),
    "encoded NUL in the subject": (
        email(subject=b"=?utf-8?q?Order=00_late?="),
        lambda m: m.ticket.subject,
        "Order late",
    ),
    "NUL in the Message-ID": (email(message_id=b"<m\x001@mail.example>"), lambda m: m.provider_id, "<m1@mail.example>"),
    "NUL in the sender's name": (
        email(sender=b'"Ann\x00 Lee" <ann@example.com>'),
        lambda m: m.customer.name,
        "Ann Lee",
    ),
    # The stdlib's parser keeps an undecodable byte of a header as a lone surrogate (surrogateescape).
    "8-bit byte in the sender's name": (
        email(sender=b'"Ann\xff Lee" <ann@example.com>'),
        lambda m: m.customer.name,
        "Ann\ufffd Lee",
    ),
    "NUL in a file name": (
        with_attachment(b"invoice\x00.pdf"),
        lambda m: Attachment.objects.get(message=m).filename,
        "invoice.pdf",
    ),
}


@pytest.mark.parametrize(("raw", "read", "stored"), CASES.values(), ids=CASES.keys())
def test_unstorable_text_in_an_email_is_made_storable_and_the_message_lands_on_a_ticket(
    raw, read, stored, mta_client, email_channel, django_capture_on_commit_callbacks
):
    response = post_raw(mta_client, email_channel, raw, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    event = InboundEvent.objects.get()
    assert (event.status, event.attempts, event.reason) == (InboundEvent.Status.PROCESSED, 1, "")
    assert bytes(event.raw) == raw
    assert read(Message.objects.get()) == stored


def test_an_email_event_that_failed_on_nul_before_is_processed_when_retried(
    admin_client, email_channel, django_capture_on_commit_callbacks
):
    raw = email(subject=b"Order\x00 late", body=b"Where\x00 is it?")
    event = InboundEvent.objects.create(
        channel=email_channel,
        provider_id="<m1@mail.example>",
        raw=raw,
        content_type="message/rfc822",
        status=InboundEvent.Status.FAILED,
        attempts=5,
        reason="DataError: PostgreSQL text fields cannot contain NUL (0x00) bytes",
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/api/v1/inbound-events/{event.public_id}/retry")

    assert response.status_code == 202
    event.refresh_from_db()
    assert (event.status, event.reason) == (InboundEvent.Status.PROCESSED, "")
    message = Message.objects.get()
    assert (message.text, message.ticket.subject) == ("Where is it?\r\n", "Order late")


def test_a_body_over_the_limit_is_shortened_with_a_note(
    mta_client, email_channel, django_capture_on_commit_callbacks, settings
):
    settings.HELPDESK = {**settings.HELPDESK, "MAX_MESSAGE_TEXT_CHARS": 200}
    raw = email(body=b"z" * 300)  # and the line break that ends it

    post_raw(mta_client, email_channel, raw, django_capture_on_commit_callbacks)

    message = Message.objects.get()
    note = (
        "\n\n[Shortened: this message has 302 characters and the limit is 200. "
        "The whole message is kept as it arrived.]"
    )
    assert message.text == "z" * (200 - len(note)) + note
    assert message.metadata["is_truncated"] is True
    assert bytes(InboundEvent.objects.get().raw) == raw


@pytest.mark.parametrize(("field", "read"), [("TextBody", lambda m: m.text), ("Subject", lambda m: m.ticket.subject)])
def test_a_nul_in_a_postmark_inbound_post_is_removed_and_the_message_lands_on_a_ticket(
    field, read, client, email_channel, settings, django_capture_on_commit_callbacks
):
    """Postmark posts JSON, which can escape a NUL (``\\u0000``); anymail rebuilds a message from it, whose parse
    failed on every attempt."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": [WEBHOOK_SECRET]}
    payload = postmark_payload(raw=None)
    written = payload[field]
    payload[field] = written[:4] + "\x00" + written[4:]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(POSTMARK_URL, json.dumps(payload), content_type="application/json", **basic_auth())

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert (event.status, event.attempts, event.reason) == (InboundEvent.Status.PROCESSED, 1, "")
    assert read(Message.objects.get()) == written
