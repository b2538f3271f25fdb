"""The batch import (``email_import_many``): the same tickets, threads, customers, participants and outcomes as one
``email_import`` per message on the same mailbox, in a few statements per message, and a failing message still
affects no other."""

from email.message import EmailMessage
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import channels_app.providers.email.adapter  # noqa: F401  (registers the email adapter)
from channels_app.models import Channel, InboundEvent
from channels_app.services import inbound_dispatch
from channels_app.services import mailbox_import as importing
from channels_app.services.mailbox_import import email_import, email_import_many
from customers.models import Customer, CustomerIdentity
from tests.factories import ChannelFactory, TeamFactory
from tickets import tasks as tickets_tasks
from tickets.models import Message, Ticket, TicketParticipant
from tickets.services import ingest_batch
from timeline.models import TimelineEvent

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
    # A batch import pushes nothing per message (the agents hear of the batch once), so these are all ingestion's.
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

    def ingest_fails_for_carl(*, channel, inbound, **options):
        result = real_ingest(channel=channel, inbound=inbound, **options)
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


def test_a_batchs_new_tickets_are_routed_together_after_it_commits(
    channel, monkeypatch, django_capture_on_commit_callbacks
):
    # Given a mailbox whose team is Billing, and a routing that counts its calls
    team = TeamFactory(name="Billing")
    channel.default_team = team
    channel.save(update_fields=["default_team"])
    calls = []
    real_route = tickets_tasks.route_tickets.delay
    monkeypatch.setattr(
        tickets_tasks.route_tickets,
        "delay",
        lambda ticket_ids: calls.append(sorted(ticket_ids)) or real_route(ticket_ids),
    )
    messages = mailbox()

    # When it is imported in batches of 4, and the routing runs as each batch commits
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = dict(email_import_many(channel=channel, messages=messages, batch_size=4))

    # Then every new ticket went to Billing with one timeline event, and nothing else was routed
    new_tickets = Ticket.objects.filter(channel=channel)
    assert sum(outcome.status == "ingested" for outcome in outcomes.values()) == new_tickets.count() == 4
    assert set(new_tickets.values_list("team_id", flat=True)) == {team.pk}
    for ticket in new_tickets:
        assert list(
            TimelineEvent.objects.filter(ticket=ticket, type=TimelineEvent.Type.TEAM_CHANGED).values_list(
                "params", flat=True
            )
        ) == [{"from": None, "to": team.pk, "rule": "channel_default_team", "actor_label": "routing"}]
    # And one routing call per batch that opened tickets, each with that batch's tickets
    assert sorted(pk for ticket_ids in calls for pk in ticket_ids) == sorted(new_tickets.values_list("pk", flat=True))
    assert len(calls) <= -(-len(messages) // 4)


def test_customers_who_write_again_are_touched_in_one_update_per_batch(channel):
    # Given ten customers from an earlier import, one without a name and one an agent named meanwhile
    firsts = [(f"new-{n}", email_bytes(f"<new-{n}@mail.example>", f"person{n}@example.com")) for n in range(10)]
    list(email_import_many(channel=channel, messages=firsts, batch_size=10))
    Customer.objects.filter(identities__value="person0@example.com").update(name="")
    Customer.objects.filter(identities__value="person1@example.com").update(name="Named by an agent")
    Customer.objects.update(last_seen_at=None, last_channel=None)
    # When each writes again (person2 twice), with a display name, in one batch
    replies = [
        (
            f"reply-{n}",
            email_bytes(
                f"<re-{n}@mail.example>", f"Person {n} <person{n}@example.com>", in_reply_to=f"<new-{n}@mail.example>"
            ),
        )
        for n in range(10)
    ]
    replies.append(
        ("again-2", email_bytes("<again-2@mail.example>", "person2@example.com", in_reply_to="<re-2@mail.example>"))
    )
    with CaptureQueriesContext(connection) as queries:
        outcomes = dict(email_import_many(channel=channel, messages=replies, batch_size=20))

    # Then every one is threaded, and the customers' latest visit was written in one update
    assert {outcome.status for outcome in outcomes.values()} == {"threaded"}
    customer_updates = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "customers_customer"')
    ]
    assert len(customer_updates) == 1
    customers = {c.identities.get().value: c for c in Customer.objects.prefetch_related("identities")}
    assert all(c.last_channel_id == channel.pk and c.last_seen_at is not None for c in customers.values())
    # And a missing name was filled in from the mail, a name given by an agent kept
    assert customers["person0@example.com"].name == "Person 0"
    assert customers["person1@example.com"].name == "Named by an agent"
    # And the later of two messages counts as the visit (its touch comes after the earlier one was stored)
    earlier = Message.objects.get(provider_id="<re-2@mail.example>")
    assert customers["person2@example.com"].last_seen_at > earlier.created_at


def test_an_automatic_message_after_a_touch_in_the_same_batch_keeps_the_latest_visit(channel):
    first = email_bytes("<new-1@mail.example>", "Ann <ann@example.com>")
    list(email_import_many(channel=channel, messages=[("first", first)], batch_size=10))
    Customer.objects.update(last_seen_at=None)
    messages = [
        ("reply", email_bytes("<re-1@mail.example>", "ann@example.com", in_reply_to="<new-1@mail.example>")),
        (
            "ooo",
            email_bytes(
                "<ooo-1@mail.example>",
                "ann@example.com",
                in_reply_to="<new-1@mail.example>",
                headers={"Auto-Submitted": "auto-replied"},
            ),
        ),
    ]

    outcomes = dict(email_import_many(channel=channel, messages=messages, batch_size=10))

    assert {label: outcome.status for label, outcome in outcomes.items()} == {"reply": "threaded", "ooo": "threaded"}
    customer = Customer.objects.get()
    # The reply's visit was written before the automatic message wrote the row: it is kept, and did not overwrite
    # what the later message wrote
    assert customer.last_seen_at is not None
    assert customer.updated_at > Message.objects.get(provider_id="<ooo-1@mail.example>").created_at


def test_the_raw_messages_are_stored_byte_for_byte(channel):
    # Every byte value, NUL included, in a message that is no email, and 8-bit text in one that is
    messages = [
        ("all-bytes", bytes(range(256)) * 4),
        ("latin-1", email_bytes("<l1@mail.example>", "ann@example.com").replace(b"Hello", b"Gr\xfc\xdfe \\x41")),
    ]
    factory = connection.connection.cursor_factory if connection.connection else None

    list(email_import_many(channel=channel, messages=messages, batch_size=10))

    stored = {event.provider_id: bytes(event.raw) for event in InboundEvent.objects.filter(channel=channel)}
    assert sorted(stored.values()) == sorted(raw for _, raw in messages)
    if factory is not None:
        # The binding used for the raw messages is this insert's only: the connection is as it was.
        assert connection.connection.cursor_factory is factory


def test_a_message_id_another_import_stores_meanwhile_sends_only_that_message_the_single_way(channel, monkeypatch):
    # Given a raw message stored by another import after this batch looked (its first look misses it)
    email_import(channel=channel, raw=email_bytes("<taken@mail.example>", "ann@example.com"))
    real_stored = importing._events_stored
    looks = []

    def first_look_misses(channel, provider_ids):
        looks.append(provider_ids)
        return set() if len(looks) == 1 else real_stored(channel, provider_ids)

    monkeypatch.setattr(importing, "_events_stored", first_look_misses)
    singles = []
    real_single = importing._email_import_in_savepoint
    monkeypatch.setattr(
        importing, "_email_import_in_savepoint", lambda channel, raw: singles.append(raw) or real_single(channel, raw)
    )
    messages = [
        ("taken", email_bytes("<taken@mail.example>", "ann@example.com")),
        ("bob", email_bytes("<bob@mail.example>", "bob@example.com")),
        ("carl", email_bytes("<carl@mail.example>", "carl@example.com")),
    ]

    outcomes = dict(email_import_many(channel=channel, messages=messages, batch_size=10))

    # Then the clash is seen on the second look: the duplicate alone goes the single way, the rest together
    assert {label: outcome.status for label, outcome in outcomes.items()} == {
        "taken": "duplicate",
        "bob": "ingested",
        "carl": "ingested",
    }
    assert len(looks) == 2
    assert singles == [messages[0][1]]
    assert InboundEvent.objects.filter(provider_id="<taken@mail.example>").count() == 1
    assert Ticket.objects.count() == 3
