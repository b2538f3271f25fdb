"""The Twilio SMS webhook with input PostgreSQL cannot store as sent, Unicode digits where Twilio writes counts, and
a body over the limit every channel has: each recorded payload (``tests/fixtures/twilio/``) signed by the
``twilio`` package lands on a timeline, its raw form kept; none is a failed event. On real PostgreSQL."""

from urllib.parse import parse_qsl, urlencode

import pytest
from django.test import Client
from django.urls import reverse
from twilio.request_validator import SIGNATURE_HEADER

from channels_app.models import Delivery, InboundEvent
from customers.models import CustomerIdentity
from tests.channels_app.sms_fixtures import (
    ACCOUNT_SID,
    CUSTOMER_PHONE,
    TEST_SERVER,
    inbound_path,
    post_twilio,
    signature_for,
    sms_channel_create,
    sms_rate_buckets_clear,
    twilio_payload,
)
from tests.conftest import services_or_skip
from tests.factories import AgentFactory, CustomerFactory, TicketFactory
from tickets.models import Message
from tickets.services.replies import reply_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgres():
    services_or_skip(need_postgres=True)


@pytest.fixture
def sms_channel(db):
    return sms_channel_create()


def post(client, channel, params, capture):
    with capture(execute=True):
        return post_twilio(client, inbound_path(channel), params)


def assert_processed_with_raw(params) -> Message:
    event = InboundEvent.objects.get()
    assert (event.status, event.attempts, event.reason) == (InboundEvent.Status.PROCESSED, 1, "")
    assert bytes(event.raw) == urlencode(params).encode()
    return Message.objects.get()


@pytest.mark.parametrize(
    ("field", "read"),
    [
        ("Body", lambda message: message.text),
        ("FromCity", lambda message: message.metadata["twilio"]["FromCity"]),
    ],
)
def test_a_nul_is_removed_and_the_message_lands_on_a_ticket(
    field, read, client, sms_channel, django_capture_on_commit_callbacks
):
    value = {"Body": "Where\x00 is it?", "FromCity": "SAN\x00 FRANCISCO"}[field]
    params = twilio_payload(**{field: value})

    response = post(client, sms_channel, params, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    message = assert_processed_with_raw(params)
    assert read(message) == value.replace("\x00", "")


def test_a_lone_surrogate_in_a_body_is_replaced_and_the_message_lands_on_a_ticket(
    client, sms_channel, django_capture_on_commit_callbacks
):
    """An emoji split between two segments can leave half of a surrogate pair, encoded as UTF-8 would (ED A0 80)."""
    params = twilio_payload(Body="Hi \ud83d there")
    body = urlencode(params, errors="surrogatepass")
    # Signed over the form as Django reads it back (request.POST), as the webhook's check does.
    signed = dict(parse_qsl(body, errors="replace"))

    path = inbound_path(sms_channel)
    headers = {SIGNATURE_HEADER: signature_for(TEST_SERVER + path, signed)}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, data=body, content_type="application/x-www-form-urlencoded", headers=headers)

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert (event.status, event.attempts, event.reason) == (InboundEvent.Status.PROCESSED, 1, "")
    assert bytes(event.raw) == body.encode()
    assert Message.objects.get().text == "Hi \ufffd there"


def test_an_sms_event_that_failed_on_nul_before_is_processed_when_retried(
    admin_client, sms_channel, django_capture_on_commit_callbacks
):
    """Events stored by the code before this fix, failed for good: an admin's retry now takes them in."""
    params = twilio_payload(Body="Where\x00 is it?")
    event = InboundEvent.objects.create(
        channel=sms_channel,
        provider_id=params["MessageSid"],
        raw=urlencode(params).encode(),
        content_type="application/x-www-form-urlencoded",
        status=InboundEvent.Status.FAILED,
        attempts=5,
        reason="DataError: PostgreSQL text fields cannot contain NUL (0x00) bytes",
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/api/v1/inbound-events/{event.public_id}/retry")

    assert response.status_code == 202
    event.refresh_from_db()
    assert (event.status, event.attempts, event.reason) == (InboundEvent.Status.PROCESSED, 1, "")
    assert Message.objects.get().text == "Where is it?"


@pytest.mark.parametrize("count", ["²", "٣", "1_0", "³"])
def test_a_media_count_in_other_digits_means_no_media(count, client, sms_channel, django_capture_on_commit_callbacks):
    """``"²".isdigit()`` is true and ``int("²")`` raises: the event failed on every attempt."""
    params = twilio_payload("mms", NumMedia=count, NumSegments=count)

    response = post(client, sms_channel, params, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    message = assert_processed_with_raw(params)
    assert (message.metadata["media"], message.metadata["num_segments"]) == ([], None)


def test_a_body_over_the_limit_is_shortened_with_a_note_and_kept_whole_in_the_raw_event(
    client, sms_channel, django_capture_on_commit_callbacks, settings
):
    """Twilio retries a refused webhook, so the message is kept: shortened to the limit every channel has (the API
    channel answers 400 over it), saying so, with the whole body in the raw event."""
    limit = settings.HELPDESK["MAX_MESSAGE_TEXT_CHARS"]
    body = "x" * (limit + 1)
    params = twilio_payload(Body=body)

    response = post(client, sms_channel, params, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    message = assert_processed_with_raw(params)
    note = (
        "\n\n[Shortened: this message has 200,001 characters and the limit is 200,000. "
        "The whole message is kept as it arrived.]"
    )
    assert message.text == "x" * (limit - len(note)) + note
    assert len(message.text) == limit
    assert message.metadata["is_truncated"] is True


def test_a_body_at_the_limit_is_stored_whole(client, sms_channel, django_capture_on_commit_callbacks, settings):
    body = "y" * settings.HELPDESK["MAX_MESSAGE_TEXT_CHARS"]
    params = twilio_payload(Body=body)

    post(client, sms_channel, params, django_capture_on_commit_callbacks)

    message = assert_processed_with_raw(params)
    assert message.text == body
    assert "is_truncated" not in message.metadata


def test_a_status_callback_naming_our_message_in_other_digits_finds_the_delivery_by_twilios_id(sms_channel):
    """The callback URL's ``?message=`` in digits ``int()`` cannot read answered 500 after ``isdigit()``."""
    sms_rate_buckets_clear()
    customer = CustomerFactory()
    CustomerIdentity.objects.create(customer=customer, kind="phone", value=CUSTOMER_PHONE, is_verified=True)
    ticket = TicketFactory(customer=customer, channel=sms_channel)
    message = reply_create(ticket=ticket, author=AgentFactory(), text="On its way.", channel=sms_channel)
    sid = "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    Delivery.objects.filter(message=message).update(status=Delivery.Status.SENT, provider_message_id=sid, attempts=1)
    path = reverse("sms_webhooks:twilio-status", args=[sms_channel.public_key]) + "?message=%C2%B2"
    params = {"AccountSid": ACCOUNT_SID, "MessageSid": sid, "MessageStatus": "delivered", "SmsSid": sid}

    response = post_twilio(Client(), path, params)

    assert response.status_code == 200
    assert Delivery.objects.get(message=message).status == Delivery.Status.DELIVERED


@pytest.mark.parametrize("route", ["sms_webhooks:twilio-inbound", "sms_webhooks:twilio-status"])
def test_a_nul_in_the_webhook_url_is_a_404_and_nothing_is_stored(route, client, sms_channel):
    """The channel is looked up by the URL's public key: a NUL in it reached PostgreSQL and answered 500."""
    path = reverse(route, args=[sms_channel.public_key]).replace(sms_channel.public_key, sms_channel.public_key + "%00")

    response = post_twilio(client, path, twilio_payload())

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert InboundEvent.objects.count() == 0
    assert Message.objects.count() == 0
