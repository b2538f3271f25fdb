"""POST /api/v1/channels/{id}/email/raw: raw RFC 822 from an MTA pipe, stored as posted, once per Message-ID, then
parsed onto a ticket by the (eager) task; authenticated like the API channel's message endpoint."""

import json

import pytest
from rest_framework.test import APIClient

from agents.models import ApiToken
from agents.services import api_token_create
from channels_app.models import Channel, InboundEvent
from tests.conftest import bearer
from tests.factories import ChannelFactory
from tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db

RAW = (
    b"From: Ann Lee <ann@example.com>\r\n"
    b"To: support@desk.example\r\n"
    b"Subject: Order late\r\n"
    b"Message-ID: <m1@mail.example>\r\n"
    b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Caf\xe9 order A-1 has not arrived.\r\n"
)


@pytest.fixture
def email_channel():
    return ChannelFactory(
        kind=Channel.Kind.EMAIL, name="Support", address="support@desk.example", continue_open_ticket=False
    )


@pytest.fixture
def mta_client(email_channel) -> APIClient:
    token = api_token_create(name="mta", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=email_channel)
    return bearer(APIClient(), token.secret)


@pytest.fixture
def post_raw(django_capture_on_commit_callbacks):
    def post(client, channel, body, content_type="message/rfc822"):
        with django_capture_on_commit_callbacks(execute=True):
            return client.generic("POST", f"/api/v1/channels/{channel.pk}/email/raw", body, content_type=content_type)

    return post


def test_raw_message_is_stored_as_posted_and_becomes_a_ticket(mta_client, email_channel, post_raw):
    response = post_raw(mta_client, email_channel, RAW)

    assert response.status_code == 202
    event = InboundEvent.objects.get()
    body = response.json()
    assert body == {
        "id": str(event.public_id),
        "status": "accepted",
        "event_status": "received",
        "url": f"http://testserver/api/v1/channels/{email_channel.pk}/events/{event.public_id}",
    }
    assert bytes(event.raw) == RAW
    assert event.provider_id == "<m1@mail.example>"
    assert event.content_type == "message/rfc822"
    assert event.status == InboundEvent.Status.PROCESSED, event.reason
    message = Message.objects.get()
    assert message.ticket == Ticket.objects.get()
    assert message.channel == email_channel
    assert message.text.rstrip() == "Café order A-1 has not arrived."
    # The receipt's URL answers with the outcome.
    status = mta_client.get(body["url"])
    assert status.status_code == 200
    assert status.json()["ticket_id"] == message.ticket_id


def test_the_same_message_twice_is_one_event_and_answers_duplicate(mta_client, email_channel, post_raw):
    first = post_raw(mta_client, email_channel, RAW)
    second = post_raw(mta_client, email_channel, RAW)

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["event_status"] == "processed"
    assert InboundEvent.objects.count() == 1
    assert Message.objects.count() == 1


@pytest.mark.parametrize("body", [b"", b"\r\n  \r\n"])
def test_empty_body_is_refused(mta_client, email_channel, post_raw, body):
    response = post_raw(mta_client, email_channel, body)

    assert response.status_code == 400
    assert response.json()["code"] == "empty_message"
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/octet-stream"])
def test_other_content_types_are_refused_with_415(mta_client, email_channel, post_raw, content_type):
    response = post_raw(mta_client, email_channel, RAW, content_type=content_type)

    assert response.status_code == 415
    assert "message/rfc822" in response.json()["detail"]
    assert not InboundEvent.objects.exists()


def test_garbage_is_stored_and_quarantined_with_its_reason(mta_client, email_channel, post_raw):
    garbage = b"\x00\xff\xfe not an email at all \x00"

    response = post_raw(mta_client, email_channel, garbage)

    assert response.status_code == 202
    event = InboundEvent.objects.get()
    assert bytes(event.raw) == garbage
    assert event.status == InboundEvent.Status.QUARANTINED
    assert event.reason
    assert not Message.objects.exists()


def test_a_50_mb_message_is_stored_raw_then_quarantined_as_too_large(mta_client, email_channel, post_raw, settings):
    assert settings.INBOUND_EMAIL_MAX_BODY_BYTES > 50 * 1024 * 1024 > settings.API_MAX_BODY_BYTES
    big = RAW.replace(b"<m1@mail.example>", b"<big@mail.example>") + b"x" * (50 * 1024 * 1024)

    response = post_raw(mta_client, email_channel, big)

    assert response.status_code == 202
    event = InboundEvent.objects.get()
    assert len(bytes(event.raw)) == len(big)
    assert event.status == InboundEvent.Status.QUARANTINED
    assert event.reason.startswith(f"message is {len(big)} bytes; the limit is ")
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("api_cap", "detail"),
    [
        (10 * 1024 * 1024, f"The message is over {len(RAW) - 1} bytes (INBOUND_EMAIL_MAX_BODY_BYTES)."),
        # Over the API cap too: the middleware refuses it by Content-Length, before the body is read.
        (100, f"Request body is {len(RAW)} bytes; the limit is {len(RAW) - 1}."),
    ],
    ids=["by-the-view", "by-the-middleware"],
)
def test_a_body_over_the_email_cap_is_refused_with_413(mta_client, email_channel, post_raw, settings, api_cap, detail):
    settings.API_MAX_BODY_BYTES = api_cap
    settings.INBOUND_EMAIL_MAX_BODY_BYTES = len(RAW) - 1

    response = post_raw(mta_client, email_channel, RAW)

    assert response.status_code == 413
    assert response.json()["detail"] == detail
    assert not InboundEvent.objects.exists()


def test_the_email_route_is_exempt_from_the_smaller_api_body_cap(
    mta_client, email_channel, post_raw, settings, integration_client, api_channel
):
    settings.API_MAX_BODY_BYTES = 100
    assert len(RAW) > 100

    assert post_raw(mta_client, email_channel, RAW).status_code == 202
    other = integration_client.post(
        f"/api/v1/channels/{api_channel.pk}/messages",
        data=json.dumps({"id": "x", "sender": {"email": "ann@example.com"}, "text": "y" * 200}),
        content_type="application/json",
    )
    assert other.status_code == 413


def test_storing_takes_a_fixed_number_of_queries(mta_client, email_channel, django_assert_max_num_queries):
    # Token and channel (authentication), the insert in a savepoint; parsing runs after commit, in the task.
    with django_assert_max_num_queries(6):
        response = mta_client.generic(
            "POST", f"/api/v1/channels/{email_channel.pk}/email/raw", RAW, content_type="message/rfc822"
        )
    assert response.status_code == 202
    assert InboundEvent.objects.get().status == InboundEvent.Status.RECEIVED


def test_without_a_token_nothing_is_stored(email_channel, post_raw):
    response = post_raw(APIClient(), email_channel, RAW)

    assert response.status_code in (401, 403)
    assert not InboundEvent.objects.exists()


def test_a_token_of_another_channel_is_refused(email_channel, post_raw, integration_client):
    response = post_raw(integration_client, email_channel, RAW)

    assert response.status_code == 403
    assert not InboundEvent.objects.exists()


def test_a_token_without_messages_write_is_refused(email_channel, post_raw):
    token = api_token_create(name="crm", scopes=[ApiToken.Scope.CUSTOMERS_READ], channel=email_channel)

    response = post_raw(bearer(APIClient(), token.secret), email_channel, RAW)

    assert response.status_code == 403
    assert not InboundEvent.objects.exists()


def test_an_api_channel_takes_no_raw_email(integration_client, api_channel, post_raw):
    response = post_raw(integration_client, api_channel, RAW)

    assert response.status_code == 409
    assert response.json()["code"] == "not_an_email_channel"
    assert not InboundEvent.objects.exists()


def test_a_disabled_channel_takes_nothing(mta_client, email_channel, post_raw):
    Channel.objects.filter(pk=email_channel.pk).update(is_active=False)

    response = post_raw(mta_client, email_channel, RAW)

    assert response.status_code == 409
    assert not InboundEvent.objects.exists()
