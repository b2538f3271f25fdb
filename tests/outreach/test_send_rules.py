"""Which channel the desk writes first on, and why it does not: the preference and its fallbacks in order, each
consent rule with its recorded reason, and the caller's key that sends nothing twice."""

import threading

import pytest
import responses
from django.db import connection

from channels_app.models import Delivery, SmsOptOut
from customers.models import EmailSubscription
from helpdesk.errors import Conflict
from outreach.models import OutreachMessage
from outreach.services.send import outreach_send
from tests.channels_app.sms_fixtures import ACCOUNT_SID, CUSTOMER_PHONE
from tests.conftest import services_or_skip
from tests.factories import CustomerFactory, TicketFactory
from tests.outreach.conftest import chat_identity_add, template_create
from tickets.models import Message, Ticket
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def send(customer, template, preference, key="k-1", **options):
    return outreach_send(
        customer=customer,
        purpose=template.purpose,
        template=template,
        context={"team.name": "Billing"} if template.purpose == "notice" else {},
        channel_preference=preference,
        key=key,
        **options,
    )


def skipped_events() -> list[dict]:
    return list(TimelineEvent.objects.filter(type=TimelineEvent.Type.OUTREACH_SKIPPED).values_list("params", flat=True))


def test_the_same_key_twice_sends_one_message(mailbox, customer, notice_template):
    first = send(customer, notice_template, [mailbox], key="routed:42")
    second = send(customer, notice_template, [mailbox], key="routed:42")

    assert second == first
    assert OutreachMessage.objects.count() == 1
    assert Message.objects.filter(direction="outbound").count() == 1
    assert Delivery.objects.count() == 1
    assert TimelineEvent.objects.filter(type=TimelineEvent.Type.OUTREACH_SENT).count() == 1


def test_a_key_used_for_another_customer_is_refused(mailbox, customer, notice_template):
    send(customer, notice_template, [mailbox], key="routed:43")
    with pytest.raises(Conflict) as refused:
        send(CustomerFactory(), notice_template, [mailbox], key="routed:43")
    assert refused.value.code == "key_reused"
    assert Message.objects.filter(direction="outbound").count() == 1


@pytest.mark.services
def test_two_workers_with_the_same_key_at_once_send_one_message(transactional_db, mailbox, customer, notice_template):
    services_or_skip(need_postgres=True)
    start = threading.Barrier(2, timeout=10)
    results, errors = [], []

    def worker():
        try:
            start.wait()
            results.append(send(customer, notice_template, [mailbox], key="incident:9:update:2"))
        except Exception as exc:  # any failure of a worker is shown by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert OutreachMessage.objects.count() == 1
    assert Message.objects.filter(direction="outbound").count() == 1
    assert Delivery.objects.count() == 1


def test_the_preference_falls_back_in_order_and_records_each_channel_it_passed(
    mailbox, texts, chat_channel, customer, notice_template
):
    # Given a customer who opted out of SMS and is not on the chat widget
    SmsOptOut.objects.create(phone=CUSTOMER_PHONE, channel=texts, keyword="STOP")
    chat_identity_add(customer)
    customer.preferred_channel = chat_channel
    customer.last_channel = texts
    customer.save()

    # When the desk writes to their preferred, then last-used channel, then email
    result = send(customer, notice_template, ["preferred", "last_used", mailbox])

    # Then it went by email, and the row says why the first two were passed over
    assert (result.status, result.channel_id) == ("sent", mailbox.pk)
    row = OutreachMessage.objects.get()
    assert [(item["channel_id"], item["reason"]) for item in row.considered] == [
        (chat_channel.pk, "visitor_offline"),
        (texts.pk, "sms_opted_out"),
        (mailbox.pk, ""),
    ]


def test_the_first_reachable_channel_wins(mailbox, texts, customer, notice_template):
    customer.preferred_channel = mailbox
    customer.save()

    with responses.RequestsMock():  # nothing may be posted to Twilio
        result = send(customer, notice_template, ["preferred", texts])

    assert result.channel_id == mailbox.pk
    assert [item["channel_id"] for item in OutreachMessage.objects.get().considered] == [mailbox.pk]


@pytest.mark.parametrize(
    ("setup", "channel_fixture", "reason"),
    [
        ("sms_stop", "texts", "sms_opted_out"),
        ("email_unsubscribed", "mailbox", "email_unsubscribed"),
        ("nothing", "chat_channel", "visitor_offline"),
        ("no_phone", "texts", "no_identity"),
    ],
)
def test_each_consent_rule_records_its_reason_and_sends_nothing(
    request, customer, notice_template, setup, channel_fixture, reason
):
    channel = request.getfixturevalue(channel_fixture)
    if setup == "sms_stop":
        SmsOptOut.objects.create(phone=CUSTOMER_PHONE, channel=channel, keyword="STOP")
    elif setup == "email_unsubscribed":
        EmailSubscription.objects.create(customer=customer, purpose="notice", is_subscribed=False, source="agent")
    elif setup == "nothing":
        chat_identity_add(customer)  # a visitor id, but no widget open
    elif setup == "no_phone":
        customer.identities.filter(kind="phone").delete()

    result = send(customer, notice_template, [channel])

    assert (result.status, result.reason, result.message_id) == ("skipped", reason, None)
    assert result.detail
    assert not Message.objects.filter(direction="outbound").exists()
    assert not Delivery.objects.exists()
    assert not Ticket.objects.exists()
    [event] = skipped_events()
    assert (event["reason"], event["outreach_id"]) == (reason, result.outreach_id)


def test_an_email_unsubscribe_from_one_purpose_leaves_the_others(mailbox, customer):
    EmailSubscription.objects.create(customer=customer, purpose="survey", is_subscribed=False, source="agent")

    result = send(customer, template_create("incident"), [mailbox])

    assert result.status == "sent"


def test_a_customer_with_no_channel_to_try_is_skipped_with_the_reason_and_nothing_raised(customer, notice_template):
    result = send(customer, notice_template, ["preferred", "last_used"])

    assert (result.status, result.reason) == ("skipped", "no_channel")
    assert "no preferred or last-used channel" in result.detail
    assert [event["reason"] for event in skipped_events()] == ["no_channel"]


def test_on_a_ticket_the_message_threads_there(mailbox, customer, notice_template):
    ticket = TicketFactory(customer=customer, channel=mailbox, subject="Refund", status="open")

    result = send(customer, notice_template, [mailbox], ticket=ticket)

    assert result.ticket_id == ticket.pk
    assert Message.objects.get(pk=result.message_id).ticket_id == ticket.pk
    assert Ticket.objects.count() == 1
    event = TimelineEvent.objects.get(type=TimelineEvent.Type.OUTREACH_SENT)
    assert event.ticket_id == ticket.pk


def test_a_closed_ticket_gets_a_desk_started_follow_up(mailbox, customer, notice_template):
    closed = TicketFactory(customer=customer, channel=mailbox, status="closed")

    result = send(customer, notice_template, [mailbox], ticket=closed)

    follow_up = Ticket.objects.get(pk=result.ticket_id)
    assert (follow_up.follow_up_of_id, follow_up.status) == (closed.pk, "solved")


@pytest.mark.parametrize("history", [0, 10])
def test_the_send_path_costs_the_same_queries_whatever_the_customers_history(
    mailbox, texts, chat_channel, customer, notice_template, django_assert_max_num_queries, history
):
    # Earlier tickets and messages of the customer on every channel must not make the send dearer.
    for index in range(history):
        ticket = TicketFactory(customer=customer, channel=mailbox)
        for channel in (mailbox, texts):
            Message.objects.create(
                ticket=ticket, customer=customer, channel=channel, direction="inbound", text=f"earlier {index}"
            )
    SmsOptOut.objects.create(phone=CUSTOMER_PHONE, channel=texts, keyword="STOP")

    # Three channels considered (chat: no visitor id; SMS: opted out; email: sent), the ticket opened, the
    # message, its delivery and the timeline events written.
    with django_assert_max_num_queries(23):
        result = send(customer, notice_template, [chat_channel, texts, mailbox])

    assert result.channel_id == mailbox.pk
