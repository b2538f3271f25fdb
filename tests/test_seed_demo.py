"""The demo data behind `make demo`: loaded once through the product's services, showing the desk writing first."""

import io
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command

from channels_app.models import Channel
from customers.models import Customer
from outreach.models import OutreachMessage
from tickets.models import Message, Ticket
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

# Noon in Chicago (Priya's time zone): outside the survey's quiet hours, so the demo's outcome is its consent rule.
NOON_IN_CHICAGO = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)


def seed():
    with time_machine.travel(NOON_IN_CHICAGO, tick=False):
        call_command("seed_demo", "--force", stdout=io.StringIO())


def test_the_demo_shows_notices_on_the_preferred_channel_and_a_survey_refused_by_consent():
    seed()

    rows = {row.customer.name: row for row in OutreachMessage.objects.select_related("customer", "channel")}
    maria, james, priya = rows["María García"], rows["James Okafor"], rows["Priya Sharma"]
    # María prefers the chat but has never used it: the notice falls back to email, and the row says why.
    assert (maria.status, maria.channel.kind) == (OutreachMessage.Status.SENT, Channel.Kind.EMAIL)
    assert [step["reason"] for step in maria.considered] == ["no_identity", ""]
    assert (james.status, james.channel.kind) == (OutreachMessage.Status.SENT, Channel.Kind.EMAIL)
    assert (priya.status, priya.reason) == (OutreachMessage.Status.SKIPPED, "email_unsubscribed")
    assert Message.objects.filter(pk__in=[maria.message_id, james.message_id], direction="outbound").count() == 2
    assert TimelineEvent.objects.filter(
        customer=priya.customer, type=TimelineEvent.Type.EMAIL_SUBSCRIPTION_CHANGED
    ).exists()
    assert Customer.objects.get(pk=maria.customer_id).preferred_channel.kind == Channel.Kind.CHAT


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Customer, Ticket, Message, OutreachMessage, TimelineEvent))


def test_a_second_run_adds_nothing():
    seed()
    before = counts()

    seed()

    assert counts() == before
