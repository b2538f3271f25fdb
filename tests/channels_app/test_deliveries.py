"""Sending replies through the API channel's adapter to a real HTTP callback: signed, recorded, retried, given up."""

import json
import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import Channel, Delivery, DeliveryAttempt
from channels_app.providers.api.adapter import SIGNATURE_HEADER, sign_callback
from channels_app.services.delivery_send import DeliveryShouldRetry, delivery_send
from channels_app.services.sweeps import stalled_delivery_ids
from customers.models import CustomerIdentity
from tests.channels_app.callback_server import CallbackServer
from tests.factories import AgentFactory, ChannelFactory, CustomerFactory, TicketFactory
from tickets.models import Message
from tickets.services.replies import reply_create
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

SECRET = "whsec-callback-7f3a9c"


@pytest.fixture
def callback():
    server = CallbackServer().start()
    yield server
    server.stop()


@pytest.fixture
def max_attempts(settings):
    settings.HELPDESK = {**settings.HELPDESK, "DELIVERY_MAX_ATTEMPTS": 3}
    return 3


def api_channel_to(url: str | None, *, secret: str | None = SECRET) -> Channel:
    return ChannelFactory(
        kind=Channel.Kind.API,
        name="Shop",
        settings={"callback_url": url} if url else {},
        secrets={"callback_secret": secret} if secret else {},
    )


def queued_reply(channel: Channel, *, text: str = "Your refund is on its way.") -> Delivery:
    """A reply written by an agent on ``channel``: its delivery is queued (on-commit callbacks do not run here)."""
    customer = CustomerFactory(name="Ann Lee")
    CustomerIdentity.objects.create(customer=customer, kind="external", value="u-1", is_verified=True)
    ticket = TicketFactory(customer=customer, channel=channel, subject="Refund for A-1")
    author = AgentFactory(username="bea", profile__display_name="Bea from Support")
    message = reply_create(ticket=ticket, author=author, text=text)
    return Delivery.objects.get(message=message)


def attempts_of(delivery: Delivery) -> list[tuple]:
    return list(
        DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "outcome", "error_code", "error")
    )


def failure_events() -> list[dict]:
    return list(TimelineEvent.objects.filter(type=TimelineEvent.Type.DELIVERY_FAILED).values_list("params", flat=True))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_reply_reaches_the_callback_signed_and_the_delivery_is_sent(callback):
    # Given a queued reply on an API channel with a callback URL and secret
    callback.message_id = "shop-msg-88"
    delivery = queued_reply(api_channel_to(callback.url))
    message = delivery.message

    # When it is sent
    before = int(time.time())
    delivery_send(delivery_id=delivery.pk)
    after = int(time.time())

    # Then the callback received the message as JSON
    assert len(callback.requests) == 1
    request = callback.requests[0]
    assert (request.method, request.path) == ("POST", "/helpdesk/callback")
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "type": "message.outbound",
        "message_id": message.pk,
        "ticket_id": message.ticket_id,
        "recipient": "u-1",
        "subject": "Refund for A-1",
        "text": "Your refund is on its way.",
        "html": "",
        "author_name": "Bea from Support",
    }
    # And the signature verifies over the body as received, with a current timestamp
    signature = request.headers[SIGNATURE_HEADER]
    timestamp = signature.split(",")[0].removeprefix("t=")
    assert before <= int(timestamp) <= after
    assert signature == sign_callback(secret=SECRET, timestamp=timestamp, body=request.body)
    assert signature != sign_callback(secret="another-secret", timestamp=timestamp, body=request.body)
    assert request.headers["Idempotency-Key"] == f"message-{message.pk}"
    # And the delivery is sent, with the provider's id and one attempt
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == ("sent", 1, "shop-msg-88")
    assert (delivery.error_code, delivery.error) == ("", "")
    assert delivery.sent_at is not None
    assert attempts_of(delivery) == [(1, "sent", "", "")]
    assert failure_events() == []


def test_without_a_callback_secret_the_request_is_unsigned(callback):
    delivery = queued_reply(api_channel_to(callback.url, secret=None))

    delivery_send(delivery_id=delivery.pk)

    assert SIGNATURE_HEADER not in callback.requests[0].headers
    delivery.refresh_from_db()
    assert delivery.status == "sent"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_error_puts_the_delivery_back_in_the_queue_with_a_retryable_attempt(callback, status):
    # Given a callback answering with a passing error
    callback.statuses = [status]
    delivery = queued_reply(api_channel_to(callback.url))

    # When it is sent, the task is told to retry
    with pytest.raises(DeliveryShouldRetry, match=f"callback answered {status}"):
        delivery_send(delivery_id=delivery.pk)

    # And the delivery is queued again with the attempt recorded; nothing is reported as failed
    assert len(callback.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("queued", 1, str(status))
    assert delivery.error == f"callback answered {status}"
    assert delivery.sent_at is None
    assert attempts_of(delivery) == [(1, "retryable_error", str(status), f"callback answered {status}")]
    assert failure_events() == []


def test_retries_that_succeed_end_sent_with_every_attempt_recorded(callback):
    callback.statuses = [503, 502, 200]
    delivery = queued_reply(api_channel_to(callback.url))

    for _ in range(2):
        with pytest.raises(DeliveryShouldRetry):
            delivery_send(delivery_id=delivery.pk)
    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error_code, delivery.error) == ("sent", 3, "", "")
    assert [(n, outcome) for n, outcome, _, _ in attempts_of(delivery)] == [
        (1, "retryable_error"),
        (2, "retryable_error"),
        (3, "sent"),
    ]
    # The same idempotency key every time, so the receiver can drop repeats.
    assert {request.headers["Idempotency-Key"] for request in callback.requests} == {f"message-{delivery.message_id}"}
    assert failure_events() == []


def test_after_the_last_attempt_the_delivery_fails_with_a_timeline_event(callback, max_attempts):
    # Given a callback that keeps answering 503
    callback.statuses = [503]
    delivery = queued_reply(api_channel_to(callback.url))

    # When every allowed attempt is made
    for _ in range(max_attempts - 1):
        with pytest.raises(DeliveryShouldRetry):
            delivery_send(delivery_id=delivery.pk)
    delivery_send(delivery_id=delivery.pk)

    # Then the delivery failed for good, and the ticket's timeline says so
    assert len(callback.requests) == 3
    delivery.refresh_from_db()
    detail = "gave up after 3 attempts: callback answered 503"
    assert (delivery.status, delivery.attempts, delivery.error_code, delivery.error) == ("failed", 3, "503", detail)
    assert attempts_of(delivery) == [
        (1, "retryable_error", "503", "callback answered 503"),
        (2, "retryable_error", "503", "callback answered 503"),
        (3, "permanent_error", "503", detail),
    ]
    event = TimelineEvent.objects.get(type=TimelineEvent.Type.DELIVERY_FAILED)
    assert (event.ticket_id, event.customer_id, event.actor_kind, event.actor_id) == (
        delivery.message.ticket_id,
        delivery.message.customer_id,
        "system",
        None,
    )
    assert event.params == {
        "message_id": delivery.message_id,
        "delivery_id": delivery.pk,
        "channel_id": delivery.channel_id,
        "error_code": "503",
        "error": detail,
        "actor_label": "delivery",
    }
    # And a further call sends nothing
    delivery_send(delivery_id=delivery.pk)
    assert len(callback.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301])
def test_refusal_fails_the_delivery_at_once_with_a_timeline_event(callback, status):
    callback.statuses = [status]
    delivery = queued_reply(api_channel_to(callback.url))

    delivery_send(delivery_id=delivery.pk)

    detail = f"callback refused the message with {status}"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error_code, delivery.error) == (
        "failed",
        1,
        str(status),
        detail,
    )
    assert attempts_of(delivery) == [(1, "permanent_error", str(status), detail)]
    assert failure_events() == [
        {
            "message_id": delivery.message_id,
            "delivery_id": delivery.pk,
            "channel_id": delivery.channel_id,
            "error_code": str(status),
            "error": detail,
            "actor_label": "delivery",
        }
    ]
    assert len(callback.requests) == 1


def test_connection_refused_is_retryable():
    delivery = queued_reply(api_channel_to(f"http://127.0.0.1:{closed_port()}/callback"))

    with pytest.raises(DeliveryShouldRetry):
        delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("queued", 1, "network")
    assert attempts_of(delivery) == [(1, "retryable_error", "network", "callback unreachable: ConnectError")]
    assert failure_events() == []


def test_a_callback_slower_than_the_timeout_is_retryable(callback, settings):
    settings.HELPDESK = {**settings.HELPDESK, "OUTBOUND_HTTP_TIMEOUT_SECONDS": 0.3}
    callback.delay_seconds = 1.5
    delivery = queued_reply(api_channel_to(callback.url))

    started = time.monotonic()
    with pytest.raises(DeliveryShouldRetry):
        delivery_send(delivery_id=delivery.pk)

    assert time.monotonic() - started < 1.5
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code, delivery.error) == (
        "queued",
        "network",
        "callback unreachable: ReadTimeout",
    )


def test_channel_without_callback_url_is_sent_without_http(callback):
    # Given the channel's systems read replies over the REST API instead of a callback
    delivery = queued_reply(api_channel_to(None))

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == ("sent", 1, "")
    assert attempts_of(delivery) == [(1, "sent", "", "")]
    assert callback.requests == []


def test_sending_an_already_sent_delivery_does_nothing(callback):
    delivery = queued_reply(api_channel_to(callback.url))
    delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    sent_at = delivery.sent_at

    again = delivery_send(delivery_id=delivery.pk)

    assert again.pk == delivery.pk
    assert len(callback.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("sent", 1, sent_at)
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_a_delivery_on_a_channel_without_adapter_fails_at_once():
    # An SMS provider no module registers (a channel configured for an adapter that is not installed)
    sms = ChannelFactory(kind=Channel.Kind.SMS, provider="not-installed")
    message = Message.objects.create(
        ticket=TicketFactory(), customer=CustomerFactory(), channel=sms, direction="outbound", text="Hi"
    )
    delivery = Delivery.objects.create(message=message, channel=sms, recipient="+15555550100")

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == ("failed", "no_adapter")
    assert [params["error_code"] for params in failure_events()] == ["no_adapter"]


def test_reply_through_the_api_is_delivered_to_the_callback_after_commit(
    callback, agent_client, django_capture_on_commit_callbacks
):
    # Given a queued-up conversation on a channel with a callback
    channel = api_channel_to(callback.url)
    customer = CustomerFactory(last_channel=channel)
    CustomerIdentity.objects.create(customer=customer, kind="email", value="ann@example.com", is_verified=True)
    ticket = TicketFactory(customer=customer, channel=channel)

    # When an agent replies over the API and the transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(f"/api/v1/tickets/{ticket.pk}/replies", {"text": "Done!"}, format="json")

    # Then the worker task sent it to the callback
    assert response.status_code == 201
    assert [json.loads(request.body)["text"] for request in callback.requests] == ["Done!"]
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.recipient) == ("sent", 1, "ann@example.com")


# --- Sweeping lost work -------------------------------------------------------------------------------------------


def _delivery(status: str, *, age_seconds: int) -> Delivery:
    channel = ChannelFactory()
    ticket = TicketFactory()
    message = Message.objects.create(
        ticket=ticket, customer=ticket.customer, channel=channel, direction="outbound", text="Hi"
    )
    delivery = Delivery.objects.create(message=message, channel=channel, recipient="u-1", status=status)
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=timezone.now() - timedelta(seconds=age_seconds))
    return delivery


def test_stalled_deliveries_are_found_and_sending_ones_are_queued_again(settings):
    # Given deliveries of every status, some untouched for longer than STALLED_AFTER_SECONDS (120) and some fresh
    settings.HELPDESK = {**settings.HELPDESK, "STALLED_AFTER_SECONDS": 120}
    stale_queued = _delivery("queued", age_seconds=300)
    stale_sending = _delivery("sending", age_seconds=300)
    fresh_queued = _delivery("queued", age_seconds=10)
    fresh_sending = _delivery("sending", age_seconds=10)
    stale_others = [_delivery(status, age_seconds=300) for status in ("sent", "delivered", "failed")]

    # When the sweep runs
    found = stalled_delivery_ids()

    # Then it returns the stale queued and sending ones, and queues the sending one again
    assert sorted(found) == sorted([stale_queued.pk, stale_sending.pk])
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses[stale_queued.pk] == statuses[stale_sending.pk] == "queued"
    assert statuses[fresh_queued.pk] == "queued"
    assert statuses[fresh_sending.pk] == "sending"
    assert [statuses[d.pk] for d in stale_others] == ["sent", "delivered", "failed"]
    # And it touched them, so the next beat tick does not enqueue them again
    assert stalled_delivery_ids() == []


def test_the_provider_id_of_a_sent_reply_is_kept_on_the_message(callback):
    # Given a callback that answers with its own id for the message
    callback.message_id = "crm-77"
    delivery = queued_reply(api_channel_to(callback.url))

    # When it is sent
    delivery_send(delivery_id=delivery.pk)

    # Then the id is on the delivery and on the message, where a later answer referring to it is threaded
    delivery.refresh_from_db()
    assert delivery.provider_message_id == "crm-77"
    assert Message.objects.get(pk=delivery.message_id).provider_id == "crm-77"


def test_a_provider_id_already_taken_on_the_channel_does_not_undo_the_send(callback):
    # Given an inbound message of the channel that already has the id the callback will answer with
    channel = api_channel_to(callback.url)
    callback.message_id = "crm-77"
    delivery = queued_reply(channel)
    earlier = Message.objects.get(pk=delivery.message_id)
    Message.objects.create(
        ticket=earlier.ticket,
        customer=earlier.customer,
        channel=channel,
        direction=Message.Direction.INBOUND,
        text="Earlier",
        provider_id="crm-77",
    )

    # When it is sent
    delivery_send(delivery_id=delivery.pk)

    # Then the delivery is sent all the same, and the reply keeps no id
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_message_id) == ("sent", "crm-77")
    assert Message.objects.get(pk=delivery.message_id).provider_id == ""
