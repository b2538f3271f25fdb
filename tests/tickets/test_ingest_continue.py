"""message_ingest on a channel whose conversations follow the customer: the open ticket found and touched in one
statement, and the rules of the two-statement way kept for every other case."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import Channel
from channels_app.types import InboundIdentity, InboundMessage
from tests.factories import ChannelFactory, IdentityFactory, TicketFactory
from tickets.models import Ticket
from tickets.services.ingest import message_ingest
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

PHONE = "+14155550100"


@pytest.fixture
def sms() -> Channel:
    return ChannelFactory(kind=Channel.Kind.SMS, address="+14155559999", continue_open_ticket=True)


@pytest.fixture
def ann():
    return IdentityFactory(kind="phone", value=PHONE).customer


def sms_from_ann(provider_id: str) -> InboundMessage:
    return InboundMessage(provider_id=provider_id, sender=InboundIdentity(kind="phone", value=PHONE), text="Hi")


def test_the_latest_open_ticket_is_continued_and_touched(sms, ann, django_assert_num_queries):
    hour_ago = timezone.now() - timedelta(hours=1)
    older = TicketFactory(customer=ann, status=Ticket.Status.OPEN, last_message_at=hour_ago - timedelta(hours=1))
    latest = TicketFactory(customer=ann, status=Ticket.Status.NEW, last_message_at=hour_ago)
    TicketFactory(customer=ann, status=Ticket.Status.SOLVED, last_message_at=timezone.now())
    version = latest.version

    # Its savepoint, the customer touched, the ticket found and touched, the message, the savepoint released (the
    # push's query for chat visitors comes after commit).
    with django_assert_num_queries(5):
        result = message_ingest(channel=sms, inbound=sms_from_ann("sms-1"))

    assert result.ticket.pk == latest.pk
    assert result.is_new_ticket is False
    latest.refresh_from_db()
    assert latest.last_message_at > hour_ago
    assert latest.last_customer_message_at == latest.last_message_at
    assert latest.version == version + 1
    assert result.ticket.version == latest.version  # the instance returned is the row as touched
    assert latest.status == Ticket.Status.NEW
    older.refresh_from_db()
    assert older.last_message_at < hour_ago


@pytest.mark.parametrize("status", [Ticket.Status.PENDING, Ticket.Status.ON_HOLD])
def test_a_ticket_waiting_on_someone_else_is_reopened_with_its_event(sms, ann, status):
    waiting = TicketFactory(customer=ann, status=status)

    result = message_ingest(channel=sms, inbound=sms_from_ann("sms-1"))

    assert result.ticket.pk == waiting.pk
    waiting.refresh_from_db()
    assert waiting.status == Ticket.Status.OPEN
    event = TimelineEvent.objects.get(ticket=waiting, type=TimelineEvent.Type.STATUS_CHANGED)
    assert event.params == {"from": status, "to": Ticket.Status.OPEN}


def test_a_merged_ticket_is_not_continued_and_no_active_ticket_opens_one(sms, ann):
    target = TicketFactory(customer=ann, status=Ticket.Status.SOLVED, last_message_at=timezone.now())
    TicketFactory(customer=ann, status=Ticket.Status.OPEN, merged_into=target)

    result = message_ingest(channel=sms, inbound=sms_from_ann("sms-1"))

    assert result.is_new_ticket is True
    assert Ticket.objects.filter(customer=ann).count() == 3


def test_an_automatic_message_does_not_touch_the_ticket(sms, ann):
    hour_ago = timezone.now() - timedelta(hours=1)
    ticket = TicketFactory(customer=ann, status=Ticket.Status.OPEN, last_message_at=hour_ago)
    automatic = InboundMessage(
        provider_id="auto-1",
        sender=InboundIdentity(kind="phone", value=PHONE),
        text="Out of office",
        metadata={"is_automatic": True},
    )

    result = message_ingest(channel=sms, inbound=automatic)

    assert result.ticket.pk == ticket.pk
    ticket.refresh_from_db()
    assert ticket.last_message_at == hour_ago
