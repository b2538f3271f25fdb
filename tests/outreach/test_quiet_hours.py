"""Quiet hours in the customer's time zone: a survey that would arrive at night waits for the morning (08:00 on
their clock, also on the night a daylight-saving change makes longer or shorter); an outage notice does not."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from customers.models import EmailSubscription
from outreach.models import OutreachMessage, OutreachTemplate
from outreach.services.deferred import outreach_deferred_send
from outreach.services.send import outreach_send
from outreach.tasks import send_due_deferred
from tests.outreach.conftest import template_create
from tickets.models import Message
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db


def survey(customer, channel, key="survey:1"):
    return outreach_send(
        customer=customer,
        purpose="survey",
        template=OutreachTemplate.objects.filter(purpose="survey").first() or template_create("survey"),
        context={"survey.url": "https://desk.example/s/1"},
        channel_preference=[channel],
        key=key,
    )


@pytest.mark.parametrize(
    ("zone", "night", "morning"),
    [
        # New York falls back on 1 November 2026: that night lasts an hour longer; 08:00 EST is 13:00 UTC.
        ("America/New_York", datetime(2026, 11, 1, 3, 30, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        # Paris springs forward on 29 March 2026: 22:00 CET the evening before, 08:00 CEST is 06:00 UTC.
        ("Europe/Paris", datetime(2026, 3, 28, 21, 0, tzinfo=UTC), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),
    ],
)
def test_a_survey_at_night_waits_for_eight_on_the_customers_clock_across_a_dst_change(
    mailbox, customer, zone, night, morning, django_capture_on_commit_callbacks
):
    customer.time_zone = zone
    customer.save()

    # Hours away: left to beat's sweep, no ETA task queued (on-commit callbacks run, as in production).
    with time_machine.travel(night, tick=False), django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = survey(customer, mailbox)

    assert (result.status, result.send_after, result.reason) == ("deferred", morning, "quiet_hours")
    assert callbacks == []
    assert (
        result.detail
        == f"Quiet hours in {zone}: it goes out at {morning.astimezone(ZoneInfo(zone)):%Y-%m-%d} 08:00 there."
    )
    assert not Message.objects.exists()
    assert TimelineEvent.objects.filter(type=TimelineEvent.Type.OUTREACH_DEFERRED).count() == 1

    # A minute before the end: still nothing
    with time_machine.travel(morning - timedelta(minutes=1), tick=False):
        assert outreach_deferred_send(outreach_id=result.outreach_id) is None
    assert not Message.objects.exists()

    # At the end, beat's sweep sends it once, however often it runs
    with time_machine.travel(morning, tick=False):
        send_due_deferred.delay()
        send_due_deferred.delay()
        assert outreach_deferred_send(outreach_id=result.outreach_id) is None
    row = OutreachMessage.objects.get()
    assert (row.status, row.sent_at) == (OutreachMessage.Status.SENT, morning)
    assert Message.objects.filter(direction="outbound").count() == 1


def test_a_survey_in_the_day_goes_at_once(mailbox, customer):
    customer.time_zone = "Europe/Paris"
    customer.save()

    with time_machine.travel(datetime(2026, 6, 2, 12, 0, tzinfo=UTC), tick=False):
        result = survey(customer, mailbox)

    assert result.status == "sent"


def test_an_outage_notice_at_night_is_not_deferred(mailbox, customer):
    customer.time_zone = "America/New_York"
    customer.save()

    with time_machine.travel(datetime(2026, 11, 1, 7, 0, tzinfo=UTC), tick=False):  # 02:00 in New York
        result = outreach_send(
            customer=customer,
            purpose="incident",
            template=template_create("incident"),
            context={"incident.title": "Checkout down"},
            channel_preference=[mailbox],
            key="incident:1",
        )

    assert result.status == "sent"


def test_no_or_an_unknown_time_zone_uses_the_desks(mailbox, customer, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    customer.time_zone = "Mars/Olympus_Mons"
    customer.save()

    with time_machine.travel(datetime(2026, 6, 2, 14, 0, tzinfo=UTC), tick=False):  # 23:00 in Tokyo
        result = survey(customer, mailbox)

    assert (result.status, result.send_after) == ("deferred", datetime(2026, 6, 2, 23, 0, tzinfo=UTC))


def test_a_deferred_survey_is_decided_when_it_goes_out_not_when_it_was_deferred(mailbox, customer):
    customer.time_zone = "Europe/Paris"
    customer.save()
    with time_machine.travel(datetime(2026, 6, 2, 22, 0, tzinfo=UTC), tick=False):  # midnight in Paris
        deferred = survey(customer, mailbox)
    # They unsubscribed from surveys during the night
    EmailSubscription.objects.create(customer=customer, purpose="survey", is_subscribed=False, source="agent")

    with time_machine.travel(deferred.send_after, tick=False):
        result = outreach_deferred_send(outreach_id=deferred.outreach_id)

    assert (result.status, result.reason) == ("skipped", "email_unsubscribed")
    assert not Message.objects.exists()
    # Asked again with the same key, the caller gets the decision, not a new send
    assert survey(customer, mailbox) == result


def test_a_deferral_shorter_than_the_brokers_visibility_timeout_queues_an_eta_task(
    mailbox, customer, django_capture_on_commit_callbacks
):
    customer.time_zone = "Europe/Paris"
    customer.save()

    # 07:40 in Paris: twenty minutes to wait. The ETA task runs at once in the tests' eager Celery: too early,
    # it must send nothing.
    with (
        time_machine.travel(datetime(2026, 6, 3, 5, 40, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        result = survey(customer, mailbox)

    assert len(callbacks) == 1
    assert (result.status, result.send_after) == ("deferred", datetime(2026, 6, 3, 6, 0, tzinfo=UTC))
    assert OutreachMessage.objects.get().status == OutreachMessage.Status.DEFERRED
    assert not Message.objects.exists()
