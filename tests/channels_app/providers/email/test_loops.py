"""Mail loops (RFC 3834): the acknowledgement of a new email ticket goes out marked ``Auto-Submitted:
auto-replied`` through a real SMTP server (aiosmtpd), and never to a machine, to ourselves, or twice to one sender
within the channel's interval."""

import uuid
from datetime import timedelta
from email.message import EmailMessage

import pytest
from django.utils import timezone

from channels_app.models import Delivery
from channels_app.services.mailbox_import import email_import
from channels_app.threading_refs import our_message_id, parse_our_message_id
from customers.models import Customer
from tests.channels_app.providers.email.test_outbound import CHANNEL_ADDRESS, mailbox
from tickets.models import Message, Ticket
from tickets.selectors.timeline import customer_timeline
from tickets.services.acknowledgements import DEFAULT_TEXT, ticket_acknowledge

pytestmark = pytest.mark.django_db

SENDER = "ann@example.com"


def acknowledging(smtp, **settings):
    return mailbox(smtp.port, auto_acknowledge=True, **settings)


def customer_mail(
    *, sender: str = f"Ann Lee <{SENDER}>", subject: str = "Refund for A-1", message_id: str = "", **headers
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = CHANNEL_ADDRESS
    message["Subject"] = subject
    message["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@mail.example>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Where is my refund?")
    return message.as_bytes()


def receive(channel, raw: bytes, capture):
    with capture(execute=True):
        return email_import(channel=channel, raw=raw)


def test_a_new_email_ticket_is_acknowledged_once_marked_auto_replied(smtp, django_capture_on_commit_callbacks):
    # Given a channel that acknowledges new tickets
    channel = acknowledging(smtp)

    # When a customer writes
    outcome = receive(channel, customer_mail(message_id="<q1@mail.example>"), django_capture_on_commit_callbacks)

    # Then one mail arrived at the customer's server, marked as an automatic reply and threaded under theirs
    assert outcome.status == "ingested"
    ticket = Ticket.objects.get()
    (received,) = smtp.received
    assert received.rcpt_tos == [SENDER]
    mail = received.message
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["In-Reply-To"] == "<q1@mail.example>"
    assert mail["Subject"] == f"Re: Refund for A-1 [#{ticket.pk}]"
    expected_text = DEFAULT_TEXT.format(ticket_id=ticket.pk, customer_name="Ann Lee", subject="Refund for A-1")
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n").strip() == expected_text
    # And it is an outbound message on the ticket, delivered through the normal path, that changed nothing else
    acknowledgement = Message.objects.get(direction=Message.Direction.OUTBOUND)
    assert acknowledgement.ticket_id == ticket.pk
    assert acknowledgement.author_id is None
    assert acknowledgement.metadata["automatic"] == "acknowledgement"
    assert acknowledgement.text == expected_text
    assert parse_our_message_id(mail["Message-ID"]) == acknowledgement.pk
    assert Delivery.objects.get(message=acknowledgement).status == Delivery.Status.SENT
    ticket.refresh_from_db()
    assert (ticket.status, ticket.first_response_at, ticket.assignee_id) == (Ticket.Status.NEW, None, None)
    # And the customer's timeline shows it as a message
    entries = customer_timeline(customer=ticket.customer).entries
    assert [(entry.kind, entry.item.direction) for entry in entries if entry.kind == "message"] == [
        ("message", "outbound"),
        ("message", "inbound"),
    ]


def test_a_reply_on_the_ticket_is_not_acknowledged_again(smtp, django_capture_on_commit_callbacks):
    channel = acknowledging(smtp, auto_acknowledge_interval_hours=0)
    receive(channel, customer_mail(message_id="<q1@mail.example>"), django_capture_on_commit_callbacks)
    acknowledgement_id = smtp.received[0].message["Message-ID"]

    outcome = receive(
        channel,
        customer_mail(subject="Re: Refund for A-1", message_id="<q2@mail.example>", In_Reply_To=acknowledgement_id),
        django_capture_on_commit_callbacks,
    )

    assert outcome.status == "threaded"
    assert len(smtp.received) == 1


def test_the_channels_own_text_fills_its_placeholders(smtp, django_capture_on_commit_callbacks):
    channel = acknowledging(
        smtp, auto_acknowledge_text="Hi {customer_name}, #{ticket_id} ({subject}) is noted. {unknown} {"
    )

    receive(channel, customer_mail(), django_capture_on_commit_callbacks)

    ticket = Ticket.objects.get()
    body = smtp.received[0].message.get_body(("plain",)).get_content()
    assert body.strip() == f"Hi Ann Lee, #{ticket.pk} (Refund for A-1) is noted. {{unknown}} {{"


def test_acknowledgements_are_off_by_default(smtp, django_capture_on_commit_callbacks):
    channel = mailbox(smtp.port)

    outcome = receive(channel, customer_mail(), django_capture_on_commit_callbacks)

    assert outcome.status == "ingested"
    assert smtp.received == []
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()
    assert "acknowledgement_suppressed" not in Message.objects.get().metadata


@pytest.mark.parametrize(
    "mail, reason",
    [
        ({"Auto_Submitted": "auto-replied"}, "auto-submitted: auto-replied"),
        ({"Auto_Submitted": "auto-generated"}, "auto-submitted: auto-generated"),
        ({"Auto_Submitted": "auto-notified; owner-email=x@example.com"}, "auto-submitted: auto-notified"),
        ({"Return_Path": "<>"}, "empty return path"),
        ({"Precedence": "bulk"}, "precedence: bulk"),
        ({"Precedence": "junk"}, "precedence: junk"),
        ({"Precedence": "list"}, "precedence: list"),
        ({"Precedence": "auto_reply"}, "precedence: auto_reply"),
        ({"X_Auto_Response_Suppress": "All"}, "x-auto-response-suppress"),
        ({"X_Auto_Response_Suppress": "OOF, AutoReply"}, "x-auto-response-suppress"),
        ({"List_Id": "Announcements <announce.example.com>"}, "list-id"),
        ({"sender": "MAILER-DAEMON@mx.example.com"}, "automatic sender"),
        ({"sender": "postmaster@example.com"}, "automatic sender"),
        ({"sender": "noreply@shop.example"}, "automatic sender"),
        ({"sender": "no-reply@shop.example"}, "automatic sender"),
        ({"sender": "do-not-reply@shop.example"}, "automatic sender"),
        ({"message_id": "ours"}, "our own message"),
        ({"sender": CHANNEL_ADDRESS}, "sender is one of our own addresses"),
    ],
    ids=lambda value: str(value) if isinstance(value, str) else "-".join(f"{k}={v}" for k, v in value.items()),
)
def test_no_acknowledgement_goes_to_a_machine_or_to_ourselves(smtp, django_capture_on_commit_callbacks, mail, reason):
    # Given a channel that acknowledges new tickets
    channel = acknowledging(smtp)
    if mail.get("message_id") == "ours":
        mail = {"message_id": our_message_id(message_id=987654, domain="desk.example")}

    # When an automatic mail (or our own) arrives and opens a ticket
    outcome = receive(channel, customer_mail(**mail), django_capture_on_commit_callbacks)

    # Then nothing is sent, and the inbound message says why
    assert outcome.status == "ingested"
    assert smtp.received == []
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()
    assert Message.objects.get().metadata["acknowledgement_suppressed"] == reason


@pytest.mark.parametrize("headers", [{"Auto_Submitted": "no"}, {"X_Auto_Response_Suppress": "None"}])
def test_headers_that_allow_an_answer_get_one(smtp, django_capture_on_commit_callbacks, headers):
    channel = acknowledging(smtp)

    receive(channel, customer_mail(**headers), django_capture_on_commit_callbacks)

    assert len(smtp.received) == 1


def test_a_bounce_opens_no_ticket_and_so_gets_no_acknowledgement(smtp, django_capture_on_commit_callbacks):
    channel = acknowledging(smtp)
    raw = customer_mail(sender="MAILER-DAEMON@mx.example.com", subject="Undelivered Mail Returned to Sender")

    outcome = receive(channel, raw, django_capture_on_commit_callbacks)

    assert (outcome.status, outcome.reason) == ("bounce", "bounce for a message we did not send")
    assert Ticket.objects.count() == 0
    assert smtp.received == []


def test_one_acknowledgement_per_sender_within_the_interval(smtp, django_capture_on_commit_callbacks):
    # Given a channel that acknowledges at most once a day per sender, and a sender who already got one
    channel = acknowledging(smtp, auto_acknowledge_interval_hours=24)
    receive(channel, customer_mail(subject="First"), django_capture_on_commit_callbacks)
    assert len(smtp.received) == 1

    # When the same address opens another ticket (a broken autoresponder answering with a new mail each time)
    outcome = receive(channel, customer_mail(subject="Second"), django_capture_on_commit_callbacks)

    # Then it is not acknowledged, and the message says why
    assert outcome.status == "ingested"
    assert len(smtp.received) == 1
    second = Message.objects.get(direction=Message.Direction.INBOUND, subject="Second")
    assert second.metadata["acknowledgement_suppressed"] == "sender already acknowledged within 24 hours"

    # And another sender is acknowledged meanwhile
    receive(channel, customer_mail(sender="bob@example.com", subject="Third"), django_capture_on_commit_callbacks)
    assert [received.rcpt_tos for received in smtp.received] == [[SENDER], ["bob@example.com"]]


def test_the_same_sender_is_acknowledged_again_after_the_interval(smtp, django_capture_on_commit_callbacks):
    channel = acknowledging(smtp, auto_acknowledge_interval_hours=2)
    receive(channel, customer_mail(subject="First"), django_capture_on_commit_callbacks)
    Message.objects.filter(direction=Message.Direction.OUTBOUND).update(
        created_at=timezone.now() - timedelta(hours=2, minutes=1)
    )

    receive(channel, customer_mail(subject="Second"), django_capture_on_commit_callbacks)

    assert len(smtp.received) == 2


def test_acknowledging_twice_sends_once(smtp, django_capture_on_commit_callbacks):
    channel = acknowledging(smtp)
    receive(channel, customer_mail(), django_capture_on_commit_callbacks)
    inbound = Message.objects.get(direction=Message.Direction.INBOUND)

    with django_capture_on_commit_callbacks(execute=True):
        again = ticket_acknowledge(inbound_message_id=inbound.pk)

    assert again.message == Message.objects.get(direction=Message.Direction.OUTBOUND)
    assert len(smtp.received) == 1
    assert Customer.objects.count() == 1
