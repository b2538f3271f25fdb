"""Processing stored inbound events: failures are kept, visible and retryable; lost tasks are swept up again."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import ApiToken
from agents.services import api_token_create
from channels_app.models import InboundEvent
from channels_app.services import inbound_dispatch
from channels_app.services.inbound_process import ProcessingShouldRetry, inbound_event_process
from channels_app.services.inbound_receive import inbound_event_receive
from channels_app.services.sweeps import stalled_inbound_event_ids
from customers.models import Customer
from tests.conftest import bearer
from tests.factories import ChannelFactory
from tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db

PAYLOAD = {"id": "shop-msg-1", "sender": {"email": "ann@example.com"}, "subject": "Order", "text": "Where is it?"}
RAW = json.dumps(PAYLOAD).encode()


def ingest_fails(*, channel, inbound, **options):
    raise RuntimeError("database went away")


@pytest.fixture
def event(api_channel) -> InboundEvent:
    """A stored event whose processing task has not run yet (its on_commit callback is never executed)."""
    stored, created = inbound_event_receive(
        channel=api_channel, provider_id="shop-msg-1", raw=RAW, content_type="application/json"
    )
    assert created
    return stored


@pytest.fixture
def max_attempts(settings) -> int:
    settings.HELPDESK = {**settings.HELPDESK, "INBOUND_MAX_ATTEMPTS": 3}
    return 3


def retry_url(event: InboundEvent) -> str:
    return f"/api/v1/inbound-events/{event.public_id}/retry"


def status_url(event: InboundEvent) -> str:
    return f"/api/v1/channels/{event.channel_id}/events/{event.public_id}"


# --- Failures -------------------------------------------------------------------------------------------------


def test_an_unexpected_error_marks_the_event_failed_keeps_it_raw_and_asks_for_a_retry(event, monkeypatch):
    monkeypatch.setattr(inbound_dispatch, "message_ingest", ingest_fails)

    with pytest.raises(ProcessingShouldRetry):
        inbound_event_process(event_id=event.pk)

    event.refresh_from_db()
    assert event.status == InboundEvent.Status.FAILED
    assert event.reason == "RuntimeError: database went away"
    assert event.attempts == 1
    assert event.processed_at is None
    assert bytes(event.raw) == RAW
    assert Message.objects.count() == 0
    assert Ticket.objects.count() == 0


def test_the_service_stops_asking_for_retries_after_the_last_attempt(event, max_attempts, monkeypatch):
    monkeypatch.setattr(inbound_dispatch, "message_ingest", ingest_fails)
    for _ in range(max_attempts - 1):
        with pytest.raises(ProcessingShouldRetry):
            inbound_event_process(event_id=event.pk)

    results = inbound_event_process(event_id=event.pk)

    assert results == []
    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.FAILED, max_attempts)
    assert event.reason == "RuntimeError: database went away"
    assert bytes(event.raw) == RAW


def test_a_posted_message_whose_processing_fails_is_accepted_and_shows_as_failed(
    integration_client, api_channel, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(inbound_dispatch, "message_ingest", ingest_fails)

    with django_capture_on_commit_callbacks(execute=True):
        response = integration_client.post(
            f"/api/v1/channels/{api_channel.pk}/messages", data=RAW, content_type="application/json"
        )

    assert response.status_code == 202
    event = InboundEvent.objects.get()
    # The task asked Celery for a retry (eager mode does not run it); the sweep or an admin picks it up.
    assert (event.status, event.attempts) == (InboundEvent.Status.FAILED, 1)
    assert bytes(event.raw) == RAW
    status = integration_client.get(status_url(event)).json()
    assert (status["status"], status["reason"], status["message_id"]) == (
        "failed",
        "RuntimeError: database went away",
        None,
    )


def test_an_admin_retries_a_failed_event_after_the_fix(
    event, admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(inbound_dispatch, "message_ingest", ingest_fails)
    with pytest.raises(ProcessingShouldRetry):
        inbound_event_process(event_id=event.pk)
    monkeypatch.undo()  # the fix is deployed

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(retry_url(event))

    assert response.status_code == 202
    assert (response.json()["status"], response.json()["attempts"], response.json()["reason"]) == ("received", 0, "")
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.reason == ""
    assert event.attempts == 1
    message = Message.objects.get()
    assert (message.provider_id, message.text) == ("shop-msg-1", "Where is it?")
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize("status", [InboundEvent.Status.PROCESSED, InboundEvent.Status.RECEIVED])
def test_only_failed_or_quarantined_events_can_be_retried(
    status, event, admin_client, django_capture_on_commit_callbacks
):
    InboundEvent.objects.filter(pk=event.pk).update(status=status, attempts=1)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(retry_url(event))

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Only failed or quarantined events can be retried; this one is {status}.",
        "code": "conflict",
    }
    assert callbacks == []
    event.refresh_from_db()
    assert (event.status, event.attempts) == (status, 1)


def test_a_retried_processed_event_makes_no_second_message(
    integration_client, api_channel, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        integration_client.post(
            f"/api/v1/channels/{api_channel.pk}/messages", data=RAW, content_type="application/json"
        )
    event = InboundEvent.objects.get()

    response = admin_client.post(retry_url(event))

    assert response.status_code == 409
    assert Message.objects.count() == 1


def test_an_agent_may_not_retry_events(event, agent_client, django_capture_on_commit_callbacks):
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = agent_client.post(retry_url(event))

    assert response.status_code == 403
    assert response.json() == {"detail": "Only administrators may do this."}
    assert callbacks == []
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.FAILED


def test_retrying_an_unknown_event_answers_404(admin_client):
    response = admin_client.post(f"/api/v1/inbound-events/{uuid.uuid4()}/retry")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such inbound event.", "code": "not_found"}


def test_a_quarantined_event_is_left_alone_by_processing(event):
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.QUARANTINED, reason="bad")

    assert inbound_event_process(event_id=event.pk) == []

    event.refresh_from_db()
    assert (event.status, event.attempts, event.reason) == (InboundEvent.Status.QUARANTINED, 0, "bad")
    assert Message.objects.count() == 0


def test_processing_an_event_twice_stores_one_message(event):
    first = inbound_event_process(event_id=event.pk)
    second = inbound_event_process(event_id=event.pk)

    assert [result.is_new_message for result in first] == [True]
    assert second == []
    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.PROCESSED, 1)
    assert Message.objects.count() == 1
    assert Customer.objects.count() == 1


def test_a_message_stored_already_under_another_event_is_recognised_and_the_event_processed(event, api_channel):
    inbound_event_process(event_id=event.pk)
    ticket_before = Ticket.objects.values("version", "last_message_at").get()
    again, created = inbound_event_receive(
        channel=api_channel, provider_id="shop-msg-1-redelivered", raw=RAW, content_type="application/json"
    )
    assert created

    results = inbound_event_process(event_id=again.pk)

    assert [(result.is_new_message, result.message.provider_id) for result in results] == [(False, "shop-msg-1")]
    again.refresh_from_db()
    assert again.status == InboundEvent.Status.PROCESSED
    assert Message.objects.count() == 1
    assert Ticket.objects.values("version", "last_message_at").get() == ticket_before
    assert Customer.objects.count() == 1


def test_a_new_message_is_taken_in_without_a_savepoint_of_its_own(event):
    with CaptureQueriesContext(connection) as queries:
        results = inbound_event_process(event_id=event.pk)

    assert [result.is_new_message for result in results] == [True]
    savepoints = [query["sql"] for query in queries.captured_queries if query["sql"].startswith("SAVEPOINT")]
    # The event's own transaction (a savepoint under the test's), none per message.
    assert len(savepoints) == 1


# --- Sweep of stalled events ----------------------------------------------------------------------------------


def stored(channel, provider_id: str, *, status=InboundEvent.Status.RECEIVED, attempts=0, age_seconds=0):
    created = InboundEvent.objects.create(channel=channel, provider_id=provider_id, raw=b"{}", status=status)
    InboundEvent.objects.filter(pk=created.pk).update(
        attempts=attempts, updated_at=timezone.now() - timedelta(seconds=age_seconds)
    )
    return created


def test_the_sweep_returns_stalled_events_once_per_stall_period(api_channel, settings, max_attempts):
    settings.HELPDESK = {**settings.HELPDESK, "STALLED_AFTER_SECONDS": 120}
    stalled = stored(api_channel, "stalled", age_seconds=121)
    failed_retryable = stored(
        api_channel, "failed-early", status=InboundEvent.Status.FAILED, attempts=1, age_seconds=600
    )
    stored(api_channel, "fresh", age_seconds=60)
    stored(api_channel, "failed-for-good", status=InboundEvent.Status.FAILED, attempts=max_attempts, age_seconds=600)
    stored(api_channel, "processed", status=InboundEvent.Status.PROCESSED, age_seconds=600)
    stored(api_channel, "quarantined", status=InboundEvent.Status.QUARANTINED, age_seconds=600)

    first = stalled_inbound_event_ids()
    second = stalled_inbound_event_ids()

    assert first == [failed_retryable.pk, stalled.pk]  # oldest first
    assert second == []
    stalled.refresh_from_db()
    assert timezone.now() - stalled.updated_at < timedelta(seconds=5)
    assert stalled.status == InboundEvent.Status.RECEIVED


# --- Status endpoint ------------------------------------------------------------------------------------------


def test_the_status_endpoint_shows_where_the_message_landed(
    integration_client, api_channel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        posted = integration_client.post(
            f"/api/v1/channels/{api_channel.pk}/messages", data=RAW, content_type="application/json"
        )
    event = InboundEvent.objects.get()

    response = integration_client.get(status_url(event))

    message = Message.objects.get()
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(event.public_id) == posted.json()["id"]
    assert (body["status"], body["provider_id"], body["attempts"], body["reason"]) == (
        "processed",
        "shop-msg-1",
        1,
        "",
    )
    assert (body["message_id"], body["ticket_id"], body["customer_id"]) == (
        message.pk,
        message.ticket_id,
        message.customer_id,
    )
    assert body["duplicate"] is False


def test_the_status_of_an_unprocessed_event_has_no_message_yet(event, api_channel, channel_token, api_client):
    response = bearer(api_client, channel_token).get(status_url(event))

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["message_id"], response.json()["ticket_id"]) == (
        "received",
        None,
        None,
    )


def test_an_admin_may_read_an_events_status(event, admin_client):
    response = admin_client.get(status_url(event))

    assert response.status_code == 200
    assert response.json()["status"] == "received"


def test_another_channels_token_may_not_read_the_status(event, api_client):
    other = api_token_create(name="other", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=ChannelFactory()).secret

    response = bearer(api_client, other).get(status_url(event))

    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to perform this action."}


def test_an_event_is_not_found_under_another_channel(event, api_client):
    other_channel = ChannelFactory()
    other = api_token_create(name="other", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=other_channel).secret

    response = bearer(api_client, other).get(f"/api/v1/channels/{other_channel.pk}/events/{event.public_id}")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such inbound event.", "code": "not_found"}


@pytest.mark.parametrize("event_id", ["not-a-uuid", "123", str(uuid.UUID(int=0))])
def test_a_malformed_or_unknown_event_id_answers_404(event_id, event, api_channel, integration_client):
    response = integration_client.get(f"/api/v1/channels/{api_channel.pk}/events/{event_id}")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such inbound event.", "code": "not_found"}
