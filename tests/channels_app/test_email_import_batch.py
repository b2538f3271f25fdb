"""The batch import (``email_import_many``): the same tickets, threads, customers, participants and outcomes as one
``email_import`` per message on the same mailbox, in a few statements per message, and a failing message still
affects no other."""

from email.message import EmailMessage
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

import channels_app.adapters.email  # noqa: F401  (registers the email adapter)
from channels_app.email.importing import email_import, email_import_many
from channels_app.models import Channel, InboundEvent
from channels_app.services import inbound_dispatch
from customers.models import Customer, CustomerIdentity
from tests.factories import ChannelFactory
from tickets.models import Message, Ticket, TicketParticipant, TimelineEvent
from tickets.services import ingest_batch

pytestmark = pytest.mark.django_db

DESK = "support@desk.example"


@pytest.fixture
def channel() -> Channel:
    return ChannelFactory(kind=Channel.Kind.EMAIL, name="Support", address=DESK, continue_open_ticket=False)


def email_bytes(
    message_id: str,
    sender: str | None,
    *,
    subject: str = "",
    body: str = "Hello",
    in_reply_to: str = "",
    cc: str = "",
    headers: dict | None = None,
    attachment: bytes = b"",
) -> bytes:
    message = EmailMessage()
    if sender:
        message["From"] = sender
    message["To"] = DESK
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject or f"About {message_id}"
    message["Message-ID"] = message_id
    message["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if attachment:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="invoice.pdf")
    return message.as_bytes()


def dsn_for_nothing_we_sent() -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.example.net\r\n"
        b"To: support@desk.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <dsn-1@mx.example.net>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        b"\r\n"
        b"--b1\r\n"
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"This is the mail system at host mx.example.net. Your message could not be delivered.\r\n"
        b"--b1\r\n"
        b"Content-Type: message/delivery-status\r\n"
        b"\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n"
        b"\r\n"
        b"Final-Recipient: rfc822; gone@example.org\r\n"
        b"Action: failed\r\n"
        b"Status: 5.1.1\r\n"
        b"--b1--\r\n"
    )


def mailbox() -> list[tuple[str, bytes]]:
    """Thirteen deliveries: new threads, replies in the same batch as their parent and in later ones, a colleague
    on Cc answering, a stranger's subject reference, an autoreply, duplicates in one batch and across batches, a
    message without sender, bytes that are no email, a bounce for nothing we sent, an attachment."""
    ann_first = email_bytes("<ann-1@mail.example>", "Ann <ann@example.com>", cc="bob@example.com", body="Order late")
    return [
        ("ann-1", ann_first),
        ("bob-reply", email_bytes("<bob-1@mail.example>", "bob@example.com", in_reply_to="<ann-1@mail.example>")),
        ("ann-1-again", ann_first),
        ("carl-1", email_bytes("<carl-1@mail.example>", "Carl <carl@example.com>", attachment=b"%PDF-1.4 bill")),
        ("no-sender", email_bytes("<nobody@mail.example>", None)),
        (
            "autoreply",
            email_bytes(
                "<ooo-1@mail.example>",
                "ann@example.com",
                in_reply_to="<carl-1@mail.example>",
                headers={"Auto-Submitted": "auto-replied"},
            ),
        ),
        ("eve-guess", email_bytes("<eve-1@mail.example>", "eve@elsewhere.example", subject="Re: [#999999] hi")),
        ("garbage", b"\x00\xff not an email"),
        ("carl-2", email_bytes("<carl-2@mail.example>", "carl@example.com", in_reply_to="<carl-1@mail.example>")),
        ("bounce", dsn_for_nothing_we_sent()),
        ("ann-2", email_bytes("<ann-2@mail.example>", "ann@example.com", in_reply_to="<bob-1@mail.example>")),
        ("dora-1", email_bytes("<dora-1@mail.example>", "dora@example.com")),
        ("ann-1-later", ann_first),
    ]


def snapshot(channel: Channel, outcomes: dict) -> dict:
    """Everything the import decided, without database ids (which differ between two runs)."""
    provider_ids_of = {
        ticket.pk: frozenset(ticket.messages.values_list("provider_id", flat=True))
        for ticket in Ticket.objects.filter(channel=channel)
    }
    tickets = {
        provider_ids_of[ticket.pk]: (
            ticket.subject,
            ticket.status,
            ticket.version,
            ticket.last_message_at is not None,
            ticket.customer.identities.get().value,
            frozenset(TicketParticipant.objects.filter(ticket=ticket).values_list("email", "role")),
            tuple(sorted(TimelineEvent.objects.filter(ticket=ticket).values_list("type", flat=True))),
        )
        for ticket in Ticket.objects.filter(channel=channel).select_related("customer")
    }
    messages = {
        message.provider_id: (
            message.identity.value,
            message.text,
            {key: value for key, value in message.metadata.items()},
            message.attachments.count(),
        )
        for message in Message.objects.filter(channel=channel).select_related("identity")
    }
    customers = sorted(
        (identity.value, identity.customer.name, identity.customer.last_seen_at is not None)
        for identity in CustomerIdentity.objects.select_related("customer")
    )
    events = sorted(
        (event.provider_id, event.status, event.reason, event.attempts)
        for event in InboundEvent.objects.filter(channel=channel)
    )
    return {
        "outcomes": {label: (outcome.status, outcome.reason) for label, outcome in outcomes.items()},
        "tickets": tickets,
        "messages": messages,
        "customers": customers,
        "events": events,
    }


def in_rolled_back_transaction(function):
    with transaction.atomic():
        result = function()
        transaction.set_rollback(True)
    return result


def test_a_batch_import_decides_exactly_what_one_import_per_message_decides(channel):
    messages = mailbox()

    def one_by_one():
        return snapshot(channel, {label: email_import(channel=channel, raw=raw) for label, raw in messages})

    def batched():
        return snapshot(channel, dict(email_import_many(channel=channel, messages=messages, batch_size=4)))

    expected = in_rolled_back_transaction(one_by_one)
    assert Ticket.objects.count() == 0  # rolled back: the second run starts from the same empty desk

    result = in_rolled_back_transaction(batched)

    assert result == expected
    # And what was decided is what the rules say (so the comparison is not of two empty runs).
    statuses = {label: status for label, (status, _) in result["outcomes"].items()}
    assert statuses == {
        "ann-1": "ingested",
        "bob-reply": "threaded",
        "ann-1-again": "duplicate",
        "carl-1": "ingested",
        "no-sender": "quarantined",
        "autoreply": "threaded",
        "eve-guess": "ingested",
        "garbage": "quarantined",
        "carl-2": "threaded",
        "bounce": "bounce",
        "ann-2": "threaded",
        "dora-1": "ingested",
        "ann-1-later": "duplicate",
    }
    assert sorted(map(sorted, result["tickets"])) == [
        ["<ann-1@mail.example>", "<ann-2@mail.example>", "<bob-1@mail.example>"],
        ["<carl-1@mail.example>", "<carl-2@mail.example>", "<ooo-1@mail.example>"],
        ["<dora-1@mail.example>"],
        ["<eve-1@mail.example>"],
    ]
    assert result["messages"]["<eve-1@mail.example>"][2]["ignored_subject_reference"] == [999999]
    assert result["messages"]["<carl-1@mail.example>"][3] == 1


def test_parsing_in_worker_processes_gives_the_same_result(channel):
    messages = mailbox()

    def batched(parse_workers):
        return lambda: snapshot(
            channel,
            dict(email_import_many(channel=channel, messages=messages, batch_size=4, parse_workers=parse_workers)),
        )

    expected = in_rolled_back_transaction(batched(1))

    assert in_rolled_back_transaction(batched(2)) == expected


def test_a_batch_costs_a_few_statements_per_message(channel, django_assert_max_num_queries, monkeypatch):
    # Counted: ingestion's own statements. Publishing each new message to agents' screens is the realtime module's
    # (its reads are its own to count), so it is left out here.
    monkeypatch.setattr(inbound_dispatch, "message_created_publish", lambda *, message: None)
    # Given 20 new senders and 20 replies to them, in one batch of 40
    firsts = [(f"new-{n}", email_bytes(f"<new-{n}@mail.example>", f"person{n}@example.com")) for n in range(20)]
    replies = [
        (
            f"reply-{n}",
            email_bytes(f"<re-{n}@mail.example>", f"person{n}@example.com", in_reply_to=f"<new-{n}@mail.example>"),
        )
        for n in range(20)
    ]

    # Then: about 6 statements a message (one import per message took about 25), and a handful for the batch
    with django_assert_max_num_queries(40 * 6 + 10):
        outcomes = dict(email_import_many(channel=channel, messages=firsts + replies, batch_size=40))

    assert sorted(outcome.status for outcome in outcomes.values()) == ["ingested"] * 20 + ["threaded"] * 20
    assert Ticket.objects.count() == 20
    assert Message.objects.count() == 40


def test_a_message_that_fails_leaves_nothing_and_the_rest_of_its_batch_is_taken(channel, monkeypatch):
    real_ingest = inbound_dispatch.message_ingest

    def ingest_fails_for_carl(*, channel, inbound):
        result = real_ingest(channel=channel, inbound=inbound)
        if inbound.sender.value == "carl@example.com":
            raise RuntimeError("disk full")
        return result

    monkeypatch.setattr(inbound_dispatch, "message_ingest", ingest_fails_for_carl)
    messages = [
        ("ann", email_bytes("<ann-1@mail.example>", "ann@example.com")),
        ("carl", email_bytes("<carl-1@mail.example>", "carl@example.com")),
        ("ann-reply", email_bytes("<ann-2@mail.example>", "ann@example.com", in_reply_to="<ann-1@mail.example>")),
    ]

    outcomes = dict(email_import_many(channel=channel, messages=messages, batch_size=10))

    assert {label: outcome.status for label, outcome in outcomes.items()} == {
        "ann": "ingested",
        "carl": "failed",
        "ann-reply": "threaded",
    }
    assert outcomes["carl"].reason == "RuntimeError: disk full"
    carl_event = InboundEvent.objects.get(provider_id="<carl-1@mail.example>")
    assert (carl_event.status, carl_event.reason, carl_event.attempts) == ("failed", "RuntimeError: disk full", 1)
    # Nothing of Carl's message is left: no customer, no ticket, no message.
    assert not CustomerIdentity.objects.filter(value="carl@example.com").exists()
    assert Customer.objects.count() == 1
    assert list(Message.objects.values_list("provider_id", flat=True).order_by("id")) == [
        "<ann-1@mail.example>",
        "<ann-2@mail.example>",
    ]
    assert Ticket.objects.count() == 1


def test_a_message_id_stored_after_the_batch_looked_is_a_duplicate_and_opens_no_ticket(channel, monkeypatch):
    # Given a message stored on the channel (as by another process) that the batch's look-up does not see
    stored = email_import(channel=channel, raw=email_bytes("<taken@mail.example>", "ann@example.com"))
    InboundEvent.objects.filter(pk=stored.event_id).delete()  # so the batch stores the raw message again
    monkeypatch.setattr(ingest_batch, "_stored", lambda channel, provider_ids: set())
    messages = [
        ("taken", email_bytes("<taken@mail.example>", "ann@example.com")),
        ("other", email_bytes("<other@mail.example>", "bob@example.com")),
    ]

    outcomes = dict(email_import_many(channel=channel, messages=messages, batch_size=10))

    assert {label: outcome.status for label, outcome in outcomes.items()} == {"taken": "duplicate", "other": "ingested"}
    assert Message.objects.filter(provider_id="<taken@mail.example>").count() == 1
    assert Ticket.objects.count() == 2  # Ann's first and Bob's: the duplicate opened none


def test_the_command_parses_in_worker_processes_when_asked(channel, tmp_path):
    for index, (label, raw) in enumerate(mailbox()):
        (tmp_path / f"{index:02d}-{label}.eml").write_bytes(raw)
    out = StringIO()

    call_command(
        "ingest_email",
        "--channel",
        str(channel.pk),
        "--parse-workers",
        "2",
        str(tmp_path),
        stdout=out,
        stderr=StringIO(),
    )

    assert out.getvalue().splitlines()[0] == (
        "13 messages: 4 ingested as new tickets, 4 threaded onto existing tickets, 2 duplicates, "
        "2 quarantined, 0 failed, 1 bounce"
    )
    assert Ticket.objects.count() == 4
