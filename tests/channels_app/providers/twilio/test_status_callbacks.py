"""Twilio's status callbacks, signed with the ``twilio`` package's own RequestValidator, moving deliveries only
forward: late, repeated and out-of-order callbacks never undo a final status, and a failure is told once."""

import pytest
from django.test import Client
from django.urls import reverse

from channels_app.models import Channel, Delivery, SmsOptOut
from customers.models import CustomerIdentity
from tests.channels_app.sms_fixtures import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CHANNEL_NUMBER,
    CUSTOMER_PHONE,
    TEST_SERVER,
    post_twilio,
    sms_channel_create,
    sms_rate_buckets_clear,
)
from tests.factories import AgentFactory, CustomerFactory, TicketFactory
from tickets.services.replies import reply_create
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

MESSAGE_SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"
OTHER_SID = "SM99999999999999999999999999999999"


@pytest.fixture(autouse=True)
def free_send_slots():
    sms_rate_buckets_clear()


@pytest.fixture
def channel() -> Channel:
    return sms_channel_create()


@pytest.fixture
def sent(channel) -> Delivery:
    """An SMS reply Twilio accepted as MESSAGE_SID (what delivery_send leaves behind)."""
    customer = CustomerFactory()
    CustomerIdentity.objects.create(customer=customer, kind="phone", value=CUSTOMER_PHONE, is_verified=True)
    ticket = TicketFactory(customer=customer, channel=channel)
    message = reply_create(ticket=ticket, author=AgentFactory(), text="On its way.", channel=channel)
    Delivery.objects.filter(message=message).update(
        status=Delivery.Status.SENT, provider_message_id=MESSAGE_SID, attempts=1
    )
    return Delivery.objects.get(message=message)


def status_path(channel: Channel, delivery: Delivery | None = None) -> str:
    path = reverse("sms_webhooks:twilio-status", args=[channel.public_key])
    return path + (f"?message={delivery.message_id}" if delivery is not None else "")


def callback_params(status: str, *, sid: str = MESSAGE_SID, error_code: str | None = None) -> dict[str, str]:
    """The form Twilio posts to a StatusCallback URL."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": CHANNEL_NUMBER,
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": CUSTOMER_PHONE,
    }
    if error_code is not None:
        params["ErrorCode"] = error_code
    return params


def callback(channel: Channel, delivery: Delivery | None, status: str, **kwargs):
    return post_twilio(Client(), status_path(channel, delivery), callback_params(status, **kwargs))


def state(delivery: Delivery) -> tuple:
    delivery.refresh_from_db()
    return delivery.status, delivery.provider_status, delivery.error_code


def failure_events() -> list[dict]:
    return list(TimelineEvent.objects.filter(type=TimelineEvent.Type.DELIVERY_FAILED).values_list("params", flat=True))


def test_delivered_marks_the_delivery_delivered(channel, sent):
    response = callback(channel, sent, "delivered")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Response></Response>" in response.content
    assert state(sent) == (Delivery.Status.DELIVERED, "delivered", "")


def test_callbacks_out_of_order_and_repeated_never_undo_delivered(channel, sent):
    for status in ["sent", "delivered", "sent", "queued", "delivered", "failed", "undelivered"]:
        assert callback(channel, sent, status, error_code="30003").status_code == 200

    assert state(sent) == (Delivery.Status.DELIVERED, "delivered", "")
    assert failure_events() == []


def test_sent_then_sending_keeps_sent(channel, sent):
    callback(channel, sent, "sent")
    callback(channel, sent, "sending")

    assert state(sent) == (Delivery.Status.SENT, "sent", "")


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        ("undelivered", "30003", "The recipient's phone is unreachable (switched off or out of coverage)."),
        ("undelivered", "30005", "Unknown destination: the number does not exist or is no longer in service."),
        ("failed", "30006", "The number is a landline or its carrier cannot receive SMS."),
        ("undelivered", "30007", "The carrier filtered the message (spam or content rules)."),
        ("failed", "30008", "Unknown error at the carrier."),
        ("failed", "30099", "The provider reports the message failed."),
    ],
)
def test_a_failure_fails_the_delivery_with_a_readable_reason_and_one_timeline_event(
    channel, sent, status, code, reason
):
    callback(channel, sent, status, error_code=code)
    # Twilio retries a callback it thinks failed; the same one again changes nothing
    callback(channel, sent, status, error_code=code)

    sent.refresh_from_db()
    assert (sent.status, sent.provider_status, sent.error_code, sent.error) == (
        Delivery.Status.FAILED,
        status,
        code,
        reason,
    )
    [event] = failure_events()
    assert (event["delivery_id"], event["error_code"], event["error"], event["provider_status"]) == (
        sent.pk,
        code,
        reason,
        status,
    )
    assert TimelineEvent.objects.get(type=TimelineEvent.Type.DELIVERY_FAILED).ticket_id == sent.message.ticket_id
    assert not SmsOptOut.objects.exists()


def test_an_unsubscribed_failure_records_the_opt_out(channel, sent):
    callback(channel, sent, "failed", error_code="21610")

    assert state(sent) == (Delivery.Status.FAILED, "failed", "21610")
    assert SmsOptOut.objects.filter(phone=CUSTOMER_PHONE).count() == 1


def test_a_callback_arriving_before_the_sid_was_stored_finds_the_delivery_by_our_message_id(channel, sent):
    Delivery.objects.filter(pk=sent.pk).update(status=Delivery.Status.SENDING, provider_message_id="")

    callback(channel, sent, "sent")

    sent.refresh_from_db()
    assert (sent.status, sent.provider_status, sent.provider_message_id) == (Delivery.Status.SENT, "sent", MESSAGE_SID)


def test_without_our_message_id_the_delivery_is_found_by_twilios_sid(channel, sent):
    callback(channel, None, "delivered")

    assert state(sent) == (Delivery.Status.DELIVERED, "delivered", "")


def test_a_callback_for_another_sid_than_the_stored_one_is_ignored(channel, sent):
    response = callback(channel, sent, "failed", sid=OTHER_SID, error_code="30003")

    assert response.status_code == 200
    assert state(sent) == (Delivery.Status.SENT, "", "")
    assert failure_events() == []


def test_a_callback_for_an_unknown_message_is_acknowledged_and_ignored(channel, sent):
    response = callback(channel, None, "delivered", sid=OTHER_SID)

    assert response.status_code == 200
    assert state(sent) == (Delivery.Status.SENT, "", "")


def test_a_callback_naming_another_channels_message_changes_nothing(channel, sent):
    other = sms_channel_create(address="+14155550142")

    response = callback(other, sent, "undelivered", error_code="30003")

    assert response.status_code == 200
    assert state(sent) == (Delivery.Status.SENT, "", "")
    assert failure_events() == []


def test_a_bad_signature_is_refused_and_changes_nothing(channel, sent):
    response = post_twilio(
        Client(), status_path(channel, sent), callback_params("delivered"), token="not-the-auth-token"
    )

    assert response.status_code == 403
    assert state(sent) == (Delivery.Status.SENT, "", "")


def test_a_signature_over_another_message_id_is_refused(channel, sent):
    # Signed for one message, posted for another: the query string is part of what Twilio signs
    path = status_path(channel, sent)
    response = post_twilio(
        Client(),
        path,
        callback_params("failed", error_code="30003"),
        signed_url=TEST_SERVER + path.replace(f"message={sent.message_id}", "message=999999"),
    )

    assert response.status_code == 403
    assert state(sent) == (Delivery.Status.SENT, "", "")


def test_an_unsigned_callback_is_refused(channel, sent):
    response = post_twilio(Client(), status_path(channel, sent), callback_params("delivered"), token=None)

    assert response.status_code == 403
    assert state(sent) == (Delivery.Status.SENT, "", "")


def test_an_unknown_channel_is_404(sent):
    path = reverse("sms_webhooks:twilio-status", args=["pk_nope"]) + f"?message={sent.message_id}"

    response = post_twilio(Client(), path, callback_params("delivered"))

    assert response.status_code == 404
    assert state(sent) == (Delivery.Status.SENT, "", "")


def test_a_channel_without_an_auth_token_answers_503(sent):
    bare = sms_channel_create(address="+14155550143", secrets={})

    response = post_twilio(Client(), status_path(bare, sent), callback_params("delivered"), token=AUTH_TOKEN)

    assert response.status_code == 503


def test_get_is_not_allowed(channel, sent):
    assert Client().get(status_path(channel, sent)).status_code == 405
