"""Agents' SMS replies going out through Twilio's REST API (mocked with ``responses``, everything else real):
what is posted, how Twilio's answers and failures end up on the delivery, opt-outs and the per-number rate."""

import json
from urllib.parse import parse_qs

import pytest
import requests
import responses
from celery.exceptions import Retry
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from channels_app.models import Channel, Delivery, DeliveryAttempt, SmsOptOut
from channels_app.services.delivery_send import DeliveryRateLimited, DeliveryShouldRetry, delivery_send
from channels_app.services.delivery_status import delivery_status_apply, delivery_status_find
from channels_app.sms.rate_limit import sms_send_slot_take
from channels_app.tasks.deliveries import deliver_message
from customers.models import CustomerIdentity
from helpdesk.errors import DomainError
from tests.channels_app.sms_fixtures import (
    ACCOUNT_SID,
    CHANNEL_NUMBER,
    CUSTOMER_PHONE,
    sms_channel_create,
    sms_rate_buckets_clear,
)
from tests.factories import AgentFactory, CustomerFactory, TicketFactory
from tickets.models import Message
from tickets.services.replies import reply_create
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
MESSAGE_SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"
SERVICE_SID = "MG9752274e9e519418a7406176694466fa"


@pytest.fixture(autouse=True)
def free_send_slots():
    sms_rate_buckets_clear()
    yield
    sms_rate_buckets_clear()


@pytest.fixture
def channel() -> Channel:
    return sms_channel_create()


def twilio_message(*, to: str = CUSTOMER_PHONE, body: str = "", sender: str = CHANNEL_NUMBER, **fields) -> dict:
    """Twilio's Message resource as its API returns it on create (201)."""
    return {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": "Mon, 23 Nov 2026 12:00:00 +0000",
        "date_sent": None,
        "date_updated": "Mon, 23 Nov 2026 12:00:00 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": sender,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": MESSAGE_SID,
        "status": "queued",
        "subresource_uris": {
            "media": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{MESSAGE_SID}/Media.json",
        },
        "to": to,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{MESSAGE_SID}.json",
        **fields,
    }


def twilio_error(code: int, message: str, status: int) -> dict:
    """Twilio's error body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def queued_sms(channel: Channel, *, text: str = "Your parcel ships today.", phone: str = CUSTOMER_PHONE) -> Delivery:
    customer = CustomerFactory(name="Ann Lee")
    CustomerIdentity.objects.create(customer=customer, kind="phone", value=phone, is_verified=True)
    ticket = TicketFactory(customer=customer, channel=channel, subject="Parcel")
    message = reply_create(ticket=ticket, author=AgentFactory(), text=text, channel=channel)
    return Delivery.objects.get(message=message)


def posted_form(call) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


def attempts_of(delivery: Delivery) -> list[tuple]:
    return list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "outcome", "error_code"))


def failure_events() -> list[dict]:
    return list(TimelineEvent.objects.filter(type=TimelineEvent.Type.DELIVERY_FAILED).values_list("params", flat=True))


@responses.activate
def test_reply_is_posted_to_twilio_with_its_status_callback_and_the_sid_is_kept(channel):
    # Given an agent's SMS reply, queued
    delivery = queued_sms(channel, text="Your parcel ships today.")
    responses.post(MESSAGES_URL, json=twilio_message(body="Your parcel ships today."), status=201)

    # When it is sent
    delivery_send(delivery_id=delivery.pk)

    # Then Twilio got the recipient, our number, the text, and a callback URL naming this message
    [call] = responses.calls
    callback = (
        settings.PUBLIC_BASE_URL
        + reverse("sms_webhooks:twilio-status", args=[channel.public_key])
        + f"?message={delivery.message_id}"
    )
    assert posted_form(call) == {
        "To": [CUSTOMER_PHONE],
        "From": [CHANNEL_NUMBER],
        "Body": ["Your parcel ships today."],
        "StatusCallback": [callback],
    }
    assert call.request.headers["Authorization"].startswith("Basic ")
    # And the delivery is sent under Twilio's sid, which the message keeps as its provider id
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_message_id, delivery.attempts) == (Delivery.Status.SENT, MESSAGE_SID, 1)
    assert Message.objects.get(pk=delivery.message_id).provider_id == MESSAGE_SID
    assert attempts_of(delivery) == [(1, DeliveryAttempt.Outcome.SENT, "")]


@responses.activate
def test_a_channel_without_a_number_sends_through_its_messaging_service():
    channel = sms_channel_create(address="", settings={"messaging_service_sid": SERVICE_SID})
    delivery = queued_sms(channel)
    responses.post(MESSAGES_URL, json=twilio_message(sender=None, messaging_service_sid=SERVICE_SID), status=201)

    delivery_send(delivery_id=delivery.pk)

    form = posted_form(responses.calls[0])
    assert form["MessagingServiceSid"] == [SERVICE_SID]
    assert "From" not in form
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT


@pytest.mark.parametrize(
    ("status", "code", "twilio_message_text"),
    [
        (400, 21211, "Invalid 'To' Phone Number: +1415555XXXX"),
        (400, 21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"),
        (401, 20003, "Authenticate"),
        (404, 20404, "The requested resource was not found"),
    ],
)
@responses.activate
def test_a_refusal_by_twilio_fails_the_delivery_with_twilios_code_and_message(
    channel, status, code, twilio_message_text
):
    delivery = queued_sms(channel)
    responses.post(MESSAGES_URL, json=twilio_error(code, twilio_message_text, status), status=status)

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == (Delivery.Status.FAILED, str(code))
    assert delivery.error == f"Twilio error {code}: {twilio_message_text} (HTTP {status})"
    assert attempts_of(delivery) == [(1, DeliveryAttempt.Outcome.PERMANENT_ERROR, str(code))]
    [event] = failure_events()
    assert (event["delivery_id"], event["error_code"]) == (delivery.pk, str(code))
    assert len(responses.calls) == 1
    assert not SmsOptOut.objects.exists()


@responses.activate
def test_twilio_saying_the_recipient_unsubscribed_records_their_opt_out(channel):
    delivery = queued_sms(channel)
    responses.post(
        MESSAGES_URL,
        json=twilio_error(21610, "Attempt to send to unsubscribed recipient", 400),
        status=400,
    )

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == (Delivery.Status.FAILED, "21610")
    opt_out = SmsOptOut.objects.get()
    assert (opt_out.phone, opt_out.channel_id, opt_out.keyword) == (CUSTOMER_PHONE, channel.pk, "provider:21610")
    # It is on the customer's timeline and their ticket, like a STOP they texted us
    event = TimelineEvent.objects.get(type=TimelineEvent.Type.SMS_OPTED_OUT)
    assert (event.customer_id, event.ticket_id) == (delivery.message.customer_id, delivery.message.ticket_id)
    assert (event.params["keyword"], event.params["delivery_id"]) == ("provider:21610", delivery.pk)
    # And the next reply to them is refused before anything is queued
    with pytest.raises(DomainError) as refused:
        reply_create(ticket=delivery.message.ticket, author=AgentFactory(), text="Still there?", channel=channel)
    assert refused.value.code == "sms_opted_out"


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (429, twilio_error(20429, "Too Many Requests", 429), "20429"),
        (500, twilio_error(20500, "Internal Server Error", 500), "20500"),
        (503, {"message": "Service Unavailable", "status": 503}, "503"),
    ],
)
@responses.activate
def test_429_and_5xx_are_retried(channel, status, body, code):
    delivery = queued_sms(channel)
    responses.post(MESSAGES_URL, json=body, status=status)

    with pytest.raises(DeliveryShouldRetry):
        delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code, delivery.attempts) == (Delivery.Status.QUEUED, code, 1)
    assert attempts_of(delivery) == [(1, DeliveryAttempt.Outcome.RETRYABLE_ERROR, code)]
    assert failure_events() == []


@pytest.mark.parametrize(
    "error", [requests.ConnectionError("connection refused"), requests.ReadTimeout("read timed out")]
)
@responses.activate
def test_network_errors_and_timeouts_are_retried_with_code_network(channel, error):
    delivery = queued_sms(channel)
    responses.post(MESSAGES_URL, body=error)

    with pytest.raises(DeliveryShouldRetry):
        delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == (Delivery.Status.QUEUED, "network")
    assert attempts_of(delivery) == [(1, DeliveryAttempt.Outcome.RETRYABLE_ERROR, "network")]


@responses.activate
def test_a_channel_without_credentials_fails_without_calling_twilio():
    channel = sms_channel_create(secrets={"auth_token": "only-a-token"})
    delivery = queued_sms(channel)

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == (Delivery.Status.FAILED, "not_configured")
    assert len(responses.calls) == 0
    assert len(failure_events()) == 1


def test_replying_by_sms_to_an_opted_out_number_is_refused_with_the_date(channel):
    customer = CustomerFactory()
    CustomerIdentity.objects.create(customer=customer, kind="phone", value=CUSTOMER_PHONE, is_verified=True)
    ticket = TicketFactory(customer=customer, channel=channel)
    opt_out = SmsOptOut.objects.create(phone=CUSTOMER_PHONE, channel=channel, keyword="STOP")

    with pytest.raises(DomainError) as refused:
        reply_create(ticket=ticket, author=AgentFactory(), text="Hello?", channel=channel)

    assert refused.value.code == "sms_opted_out"
    assert f"texted STOP on {timezone.localtime(opt_out.created_at):%Y-%m-%d}" in refused.value.detail
    assert "another channel" in refused.value.detail
    assert not Message.objects.filter(ticket=ticket).exists()
    assert not Delivery.objects.exists()


@responses.activate
def test_a_queued_sms_to_a_number_that_opted_out_meanwhile_is_failed_without_calling_twilio(channel):
    delivery = queued_sms(channel)
    SmsOptOut.objects.create(phone=CUSTOMER_PHONE, channel=channel, keyword="STOP")

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == (Delivery.Status.FAILED, "opted_out")
    assert len(responses.calls) == 0
    [event] = failure_events()
    assert event["error_code"] == "opted_out"


@responses.activate
def test_a_status_callback_faster_than_twilios_answer_is_not_undone_by_the_send(channel):
    # Given Twilio reports the message delivered before its API call has even answered
    delivery = queued_sms(channel)

    def twilio_answers(request):
        found = delivery_status_find(
            channel=channel, message_id=str(delivery.message_id), provider_message_id=MESSAGE_SID
        )
        delivery_status_apply(delivery=found, provider_status="delivered", provider_message_id=MESSAGE_SID)
        return 201, {}, json.dumps(twilio_message())

    responses.add_callback(responses.POST, MESSAGES_URL, callback=twilio_answers, content_type="application/json")

    # When the send then finishes
    delivery_send(delivery_id=delivery.pk)

    # Then the delivery stays delivered, with the sid and the send time
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_status, delivery.provider_message_id) == (
        Delivery.Status.DELIVERED,
        "delivered",
        MESSAGE_SID,
    )
    assert delivery.sent_at is not None
    assert attempts_of(delivery) == [(1, DeliveryAttempt.Outcome.SENT, "")]


@responses.activate
def test_no_free_send_slot_is_not_an_attempt(channel):
    # Given the channel's number has just used its one send per second
    delivery = queued_sms(channel)
    assert sms_send_slot_take(sender=CHANNEL_NUMBER, rate_per_second=1.0) == 0.0

    # When its delivery is sent
    with pytest.raises(DeliveryRateLimited) as limited:
        delivery_send(delivery_id=delivery.pk)

    # Then it waits for the next slot: queued as before, no attempt counted or recorded, nothing posted
    assert 0 < limited.value.retry_after <= 1.0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error_code) == (Delivery.Status.QUEUED, 0, "")
    assert attempts_of(delivery) == []
    assert len(responses.calls) == 0


@responses.activate
def test_the_task_sends_a_rate_limited_delivery_once_the_slot_frees():
    channel = sms_channel_create(settings={"send_rate_per_second": 5})
    delivery = queued_sms(channel)
    responses.post(MESSAGES_URL, json=twilio_message(), status=201)
    assert sms_send_slot_take(sender=CHANNEL_NUMBER, rate_per_second=5) == 0.0

    # Run as the test settings run tasks (eagerly): the retry waits for the slot instead of spinning
    result = deliver_message.apply(args=[delivery.pk])

    assert result.successful()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
    assert attempts_of(delivery) == [(1, DeliveryAttempt.Outcome.SENT, "")]
    assert len(responses.calls) == 1


@responses.activate
def test_a_worker_asks_celery_to_retry_a_rate_limited_delivery_when_the_slot_frees():
    # Given a delivery whose number just used its slot (5 a second: the next one is at most 0.2s away)
    channel = sms_channel_create(settings={"send_rate_per_second": 5})
    delivery = queued_sms(channel)
    responses.post(MESSAGES_URL, json=twilio_message(), status=201)
    assert sms_send_slot_take(sender=CHANNEL_NUMBER, rate_per_second=5) == 0.0

    # When a worker (not an eager call) runs the task
    deliver_message.push_request(
        id="task-1", args=[delivery.pk], kwargs={}, retries=0, is_eager=False, called_directly=False
    )
    try:
        with pytest.raises(Retry) as retry:
            deliver_message.run(delivery.pk)
    finally:
        deliver_message.pop_request()

    # Then it is retried after the wait, without a backoff and without an attempt counted for the wait
    assert 0 < retry.value.when <= 0.2
    # (The test settings run the re-queued task eagerly: it sent the message once the slot was free.)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
    assert attempts_of(delivery) == [(1, DeliveryAttempt.Outcome.SENT, "")]
