"""Replies on an email channel, built and sent over SMTP to a real local SMTP server (aiosmtpd)."""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.mail import get_connection
from django.utils import timezone

import channels_app.providers.email.adapter  # noqa: F401  (registers the email adapter)
from channels_app.adapters.registry import adapter_for
from channels_app.models import Channel, Delivery, DeliveryAttempt
from channels_app.providers.email.outbound import build_email
from channels_app.services.delivery_send import DeliveryShouldRetry, delivery_send
from channels_app.threading_refs import our_message_id, parse_our_message_id, parse_reply_token
from channels_app.types import OutboundMessage
from customers.models import CustomerIdentity
from helpdesk.errors import DomainError
from tests.channels_app.smtp_peer import free_port
from tests.factories import AgentFactory, ChannelFactory, CustomerFactory, TicketFactory
from tickets.models import Attachment, Message, TicketParticipant
from tickets.services.replies import reply_create
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

CHANNEL_ADDRESS = "support@desk.example"
CUSTOMER_ADDRESS = "ann@example.com"


def mailbox(port: int, **extra_settings) -> Channel:
    return ChannelFactory(
        kind=Channel.Kind.EMAIL,
        name="Acme Support",
        address=CHANNEL_ADDRESS,
        continue_open_ticket=False,
        settings={
            "email_backend": "django.core.mail.backends.smtp.EmailBackend",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            **extra_settings,
        },
    )


def conversation(channel: Channel, *, customer_name: str = "Ann Lee", subject: str = "Refund for A-1"):
    """A ticket the customer started by email: two inbound messages with Message-IDs, the newer one last."""
    customer = CustomerFactory(name=customer_name)
    identity = CustomerIdentity.objects.create(
        customer=customer, kind="email", value=CUSTOMER_ADDRESS, is_verified=True
    )
    ticket = TicketFactory(customer=customer, channel=channel, subject=subject)
    now = timezone.now()
    for age_minutes, provider_id in ((10, "first@mail.example"), (5, "<abc@mail.example>")):
        inbound = Message.objects.create(
            ticket=ticket,
            customer=customer,
            channel=channel,
            direction=Message.Direction.INBOUND,
            identity=identity,
            subject=subject,
            text="Where is my refund?",
            provider_id=provider_id,
        )
        Message.objects.filter(pk=inbound.pk).update(created_at=now - timedelta(minutes=age_minutes))
    return ticket


def queued_reply(channel: Channel, *, agent_name: str = "Bea", **conversation_options) -> Delivery:
    ticket = conversation(channel, **conversation_options)
    author = AgentFactory(username="bea", profile__display_name=agent_name)
    message = reply_create(
        ticket=ticket,
        author=author,
        text="Your refund is on its way.",
        html="<p>Your refund is <strong>on its way</strong>.</p>",
    )
    return Delivery.objects.get(message=message)


def attach(message: Message, *, filename: str, content_type: str, content: bytes) -> Attachment:
    attachment = Attachment(
        message=message,
        filename=filename,
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
    attachment.file.save(filename, ContentFile(content), save=True)
    return attachment


def attempts_of(delivery: Delivery) -> list[tuple]:
    return list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "outcome", "error_code"))


def failure_events() -> list[dict]:
    return list(TimelineEvent.objects.filter(type=TimelineEvent.Type.DELIVERY_FAILED).values_list("params", flat=True))


# --- Sending through the adapter ------------------------------------------------------------------------------


def test_the_email_channel_uses_the_smtp_adapter(smtp):
    adapter = adapter_for(mailbox(smtp.port))

    assert (type(adapter).__name__, adapter.kind, adapter.provider) == ("EmailChannelAdapter", "email", "smtp")
    assert adapter.recipient_identity_kinds == ("email",)


def test_a_reply_arrives_at_the_smtp_server_threaded_signed_and_with_its_parts(smtp):
    # Given an agent's reply, with an attachment, on a ticket the customer started by email
    delivery = queued_reply(mailbox(smtp.port))
    message = delivery.message
    attach(message, filename="refund.pdf", content_type="application/pdf", content=b"%PDF-1.4 refund")

    # When it is sent
    delivery_send(delivery_id=delivery.pk)

    # Then the SMTP server received one mail, from the channel's address to the customer's
    assert len(smtp.received) == 1
    received = smtp.received[0]
    assert (received.mail_from, received.rcpt_tos) == (CHANNEL_ADDRESS, [CUSTOMER_ADDRESS])
    mail = received.message
    assert mail["From"] == f"Bea via Acme Support <{CHANNEL_ADDRESS}>"
    assert mail["To"] == CUSTOMER_ADDRESS
    assert mail["Subject"] == f"Re: Refund for A-1 [#{message.ticket_id}]"
    # And Reply-To carries a token that leads back to the ticket
    reply_to = mail["Reply-To"]
    local_part, _, domain = reply_to.partition("@")
    assert domain == "desk.example"
    assert local_part.startswith("support+")
    assert parse_reply_token(local_part.removeprefix("support+")) == message.ticket_id
    # And the Message-ID is ours, signed, and is what the delivery recorded
    delivery.refresh_from_db()
    assert mail["Message-ID"] == delivery.provider_message_id
    assert mail["Message-ID"] == our_message_id(message_id=message.pk, domain="desk.example")
    assert parse_our_message_id(mail["Message-ID"]) == message.pk
    # And it threads under the customer's mail: newest in In-Reply-To, all of them oldest first in References
    assert mail["In-Reply-To"] == "<abc@mail.example>"
    assert mail["References"] == "<first@mail.example> <abc@mail.example>"
    assert mail["Auto-Submitted"] is None
    # And it has the text, the HTML and the attachment
    assert mail.get_body(("plain",)).get_content().strip() == "Your refund is on its way."
    assert mail.get_body(("html",)).get_content().strip() == "<p>Your refund is <strong>on its way</strong>.</p>"
    attachments = [
        (part.get_filename(), part.get_content_type(), part.get_content()) for part in mail.iter_attachments()
    ]
    assert attachments == [("refund.pdf", "application/pdf", b"%PDF-1.4 refund")]
    # And the delivery is sent after one attempt, with nothing reported as failed
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("sent", 1, "")
    assert attempts_of(delivery) == [(1, "sent", "")]
    assert failure_events() == []


def test_a_retried_send_reuses_the_same_message_id(smtp):
    # Given a server that refuses the first DATA with a passing error
    smtp.data_replies = ["451 4.3.0 try again later", "250 OK"]
    delivery = queued_reply(mailbox(smtp.port))

    with pytest.raises(DeliveryShouldRetry):
        delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == ("queued", "smtp-451")
    delivery_send(delivery_id=delivery.pk)

    # Then the mail went out once, under the id the first attempt used
    assert smtp.refused_data == 1
    assert len(smtp.received) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    expected = our_message_id(message_id=delivery.message_id, domain="desk.example")
    assert smtp.received[0].message["Message-ID"] == expected == delivery.provider_message_id
    assert attempts_of(delivery) == [(1, "retryable_error", "smtp-451"), (2, "sent", "")]


def test_the_same_message_built_twice_has_the_same_message_id():
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, name="Acme Support", address=CHANNEL_ADDRESS)
    outbound = OutboundMessage(message_id=41, ticket_id=7, recipient=CUSTOMER_ADDRESS, text="Hi", subject="Hello")

    first = build_email(channel=channel, message=outbound).message()
    second = build_email(channel=channel, message=outbound).message()

    assert first["Message-ID"] == second["Message-ID"] == our_message_id(message_id=41, domain="desk.example")


def test_newlines_in_the_subject_and_names_add_no_header_and_no_recipient(smtp):
    # Given a subject, a customer name and an agent name that try to smuggle in headers
    delivery = queued_reply(
        mailbox(smtp.port, from_name="Acme\r\nBcc: victim3@example.com"),
        subject="Hi\r\nBcc: victim@example.com",
        customer_name="Ann\r\nBcc: victim2@example.com",
        agent_name="Bea\nCc: victim4@example.com",
    )

    delivery_send(delivery_id=delivery.pk)

    # Then the mail went out to the customer alone, the text kept on one line
    assert len(smtp.received) == 1
    received = smtp.received[0]
    assert received.rcpt_tos == [CUSTOMER_ADDRESS]
    mail = received.message
    assert mail["Bcc"] is None
    assert mail["Cc"] is None
    assert mail["Subject"] == f"Re: Hi Bcc: victim@example.com [#{delivery.message.ticket_id}]"
    assert mail["From"].addresses[0].addr_spec == CHANNEL_ADDRESS
    assert mail["From"].addresses[0].display_name == "Bea Cc: victim4@example.com via Acme Bcc: victim3@example.com"
    assert b"victim2" not in received.content
    assert sorted(set(mail.keys())) == [
        "Content-Type",
        "Date",
        "From",
        "In-Reply-To",
        "MIME-Version",
        "Message-ID",
        "References",
        "Reply-To",
        "Subject",
        "To",
    ]
    delivery.refresh_from_db()
    assert delivery.status == "sent"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Refund", "Re: Refund [#7]"),
        ("Re: Refund", "Re: Refund [#7]"),
        ("RE: Refund", "RE: Refund [#7]"),
        ("Aw: Rückerstattung", "Aw: Rückerstattung [#7]"),
        ("Re: Refund [#7]", "Re: Refund [#7]"),
        ("", "Re: [#7]"),
    ],
)
def test_subject_is_a_reply_with_the_ticket_reference(subject, expected):
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, address=CHANNEL_ADDRESS)
    outbound = OutboundMessage(message_id=1, ticket_id=7, recipient=CUSTOMER_ADDRESS, text="Hi", subject=subject)

    assert build_email(channel=channel, message=outbound).subject == expected


def test_references_keep_the_newest_twenty_oldest_first_and_wrap_bare_ids():
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, address=CHANNEL_ADDRESS)
    newest_first = tuple(f"m{n}@mail.example" for n in range(25, 0, -1))
    outbound = OutboundMessage(
        message_id=1, ticket_id=7, recipient=CUSTOMER_ADDRESS, text="Hi", in_reply_to=newest_first
    )

    headers = build_email(channel=channel, message=outbound).extra_headers

    assert headers["In-Reply-To"] == "<m25@mail.example>"
    assert headers["References"] == " ".join(f"<m{n}@mail.example>" for n in range(6, 26))


def test_automatic_mail_says_it_was_auto_submitted(smtp):
    channel = mailbox(smtp.port)
    outbound = OutboundMessage(message_id=3, ticket_id=7, recipient=CUSTOMER_ADDRESS, text="We got your mail.")
    connection = get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=smtp.port)

    automatic = build_email(channel=channel, message=outbound, automatic=True)
    automatic.connection = connection
    automatic.send()
    written = build_email(channel=channel, message=outbound)
    written.connection = connection
    written.send()

    assert [received.message["Auto-Submitted"] for received in smtp.received] == ["auto-replied", None]


def test_the_adapter_parses_one_raw_email_into_one_inbound_message(smtp):
    raw = (
        b"From: Ann Lee <ann@example.com>\r\nTo: support@desk.example\r\nSubject: Refund\r\n"
        b"Message-ID: <abc@mail.example>\r\n\r\nWhere is my refund?\r\n"
    )

    channel = mailbox(smtp.port)

    messages = adapter_for(channel).parse(channel=channel, payload=raw)

    assert [(m.provider_id, m.sender.value, m.subject) for m in messages] == [
        ("<abc@mail.example>", CUSTOMER_ADDRESS, "Refund")
    ]


# --- Refusals and failures -------------------------------------------------------------------------------------


def test_a_recipient_refused_with_550_fails_the_delivery_with_a_timeline_event(smtp):
    smtp.rcpt_replies = ["550 5.1.1 No such user"]
    delivery = queued_reply(mailbox(smtp.port))

    delivery_send(delivery_id=delivery.pk)

    assert smtp.received == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error_code, delivery.error) == (
        "failed",
        1,
        "smtp-550",
        "the mail server refused the recipient",
    )
    assert attempts_of(delivery) == [(1, "permanent_error", "smtp-550")]
    assert failure_events() == [
        {
            "message_id": delivery.message_id,
            "delivery_id": delivery.pk,
            "channel_id": delivery.channel_id,
            "error_code": "smtp-550",
            "error": "the mail server refused the recipient",
            "actor_label": "delivery",
        }
    ]


def test_a_recipient_deferred_with_451_is_retryable(smtp):
    smtp.rcpt_replies = ["451 4.7.1 Greylisted, try again"]
    delivery = queued_reply(mailbox(smtp.port))

    with pytest.raises(DeliveryShouldRetry, match="the mail server refused the recipient"):
        delivery_send(delivery_id=delivery.pk)

    assert smtp.received == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("queued", 1, "smtp-451")
    assert attempts_of(delivery) == [(1, "retryable_error", "smtp-451")]
    assert failure_events() == []


def test_a_message_refused_with_554_at_data_fails_the_delivery(smtp):
    smtp.data_replies = ["554 5.7.1 Message rejected as spam"]
    delivery = queued_reply(mailbox(smtp.port))

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code, delivery.error) == (
        "failed",
        "smtp-554",
        "the mail server answered 554",
    )
    assert [event["error_code"] for event in failure_events()] == ["smtp-554"]


def test_a_closed_smtp_port_is_retryable():
    delivery = queued_reply(mailbox(free_port()))

    with pytest.raises(DeliveryShouldRetry, match="mail server unreachable: ConnectionRefusedError"):
        delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("queued", 1, "network")
    assert attempts_of(delivery) == [(1, "retryable_error", "network")]
    assert failure_events() == []


def test_a_channel_without_an_address_fails_without_contacting_the_server(smtp):
    channel = mailbox(smtp.port)
    delivery = queued_reply(channel)
    Channel.objects.filter(pk=channel.pk).update(address="")

    delivery_send(delivery_id=delivery.pk)

    assert smtp.received == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == ("failed", "invalid-address")


# --- Cc --------------------------------------------------------------------------------------------------------


def test_a_reply_with_cc_reaches_every_copied_address_and_makes_them_participants(smtp):
    ticket = conversation(mailbox(smtp.port))
    author = AgentFactory(username="bea")
    message = reply_create(
        ticket=ticket,
        author=author,
        text="Copying your colleague.",
        cc=["Bob@Example.com", "carol@example.org", CUSTOMER_ADDRESS, "bob@example.com"],
    )

    delivery_send(delivery_id=Delivery.objects.get(message=message).pk)

    received = smtp.received[0]
    assert sorted(received.rcpt_tos) == sorted([CUSTOMER_ADDRESS, "bob@example.com", "carol@example.org"])
    assert received.message["To"] == CUSTOMER_ADDRESS
    assert received.message["Cc"] == "bob@example.com, carol@example.org"
    assert message.metadata["cc"] == ["bob@example.com", "carol@example.org"]
    assert set(TicketParticipant.objects.filter(ticket=ticket).values_list("email", "role")) == {
        ("bob@example.com", "cc"),
        ("carol@example.org", "cc"),
    }


@pytest.mark.parametrize(
    ("cc", "code"),
    [
        (["not an address"], "invalid_cc"),
        (["bob@example.com\r\nBcc: eve@evil.example"], "invalid_cc"),
        (["bob@example.com, eve@evil.example"], "invalid_cc"),
        ([f"p{index}@example.com" for index in range(21)], "too_many_cc"),
    ],
)
def test_an_unusable_cc_is_refused_and_nothing_is_queued(cc, code):
    ticket = conversation(mailbox(free_port()))

    with pytest.raises(DomainError) as refused:
        reply_create(ticket=ticket, author=AgentFactory(), text="Hello", cc=cc)

    assert refused.value.code == code
    assert not Message.objects.filter(ticket=ticket, direction=Message.Direction.OUTBOUND).exists()
    assert not Delivery.objects.exists()


def test_cc_on_a_channel_that_is_not_email_is_refused(agent_client):
    ticket = conversation(mailbox(free_port()))
    api = ChannelFactory(kind=Channel.Kind.API, name="Shop")
    CustomerIdentity.objects.create(customer=ticket.customer, kind="external", value="u-1")

    response = agent_client.post(
        f"/api/v1/tickets/{ticket.pk}/replies",
        {"text": "Hello", "channel_id": api.pk, "cc": ["bob@example.com"]},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "cc_not_supported"
