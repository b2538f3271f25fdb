"""``manage.py ingest_email``: .eml files, directories, mbox files and Maildirs into an email channel, once each."""

import mailbox
from email.message import EmailMessage
from io import BytesIO, StringIO

import pytest
from django.core.management import CommandError, call_command

from channels_app.models import InboundEvent
from channels_app.services import inbound_dispatch
from channels_app.services.mailbox_import import email_import
from tests.factories import ChannelFactory
from tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db

FIRST_RUN = (
    "4 messages: 2 ingested as new tickets, 1 threaded onto existing tickets, 0 duplicates, 1 quarantined, 0 failed\n"
    "  1 quarantined: no sender address\n"
)
SECOND_RUN = (
    "4 messages: 0 ingested as new tickets, 0 threaded onto existing tickets, 4 duplicates, 0 quarantined, 0 failed\n"
)


def email_bytes(*, message_id: str, sender: str | None, day: int, body: str, in_reply_to: str = "") -> bytes:
    message = EmailMessage()
    if sender:
        message["From"] = sender
    message["To"] = "support@desk.example"
    message["Subject"] = f"Message {message_id}"
    message["Message-ID"] = message_id
    message["Date"] = f"Mon, {day:02d} Nov 2026 10:00:00 +0000"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    return message.as_bytes()


MESSAGES = [
    email_bytes(message_id="<m1@mail.example>", sender="Ann <ann@example.com>", day=2, body="My order is late."),
    email_bytes(message_id="<m2@mail.example>", sender="bob@example.com", day=3, body="Refund please."),
    email_bytes(
        message_id="<m3@mail.example>",
        sender="Ann <ann@example.com>",
        day=4,
        body="Still waiting.\n\nOn Mon, 2 Nov 2026, Ann wrote:\n> My order is late.",
        in_reply_to="<m1@mail.example>",
    ),
    email_bytes(message_id="<m4@mail.example>", sender=None, day=5, body="Who am I?"),
]


@pytest.fixture
def channel():
    return ChannelFactory(kind="email", continue_open_ticket=False)


def run(channel, *paths) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("ingest_email", "--channel", str(channel.pk), *map(str, paths), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write_mbox(path, messages) -> None:
    box = mailbox.mbox(str(path), create=True)
    for raw in messages:
        box.add(raw)
    box.flush()
    box.close()


def write_maildir(path, messages) -> None:
    box = mailbox.Maildir(str(path), create=True)
    # Added newest first: the import must still take them oldest first.
    for raw in reversed(messages):
        box.add(raw)


def write_directory(path, messages) -> None:
    path.mkdir()
    for index, raw in enumerate(messages, start=1):
        (path / f"{index:02d}.eml").write_bytes(raw)


WRITERS = {"mbox": write_mbox, "maildir": write_maildir, "directory": write_directory}


def assert_imported(channel) -> None:
    first = Message.objects.get(channel=channel, provider_id="<m1@mail.example>")
    reply = Message.objects.get(channel=channel, provider_id="<m3@mail.example>")
    other = Message.objects.get(channel=channel, provider_id="<m2@mail.example>")
    assert reply.ticket_id == first.ticket_id
    assert other.ticket_id != first.ticket_id
    assert reply.text == "Still waiting."
    assert reply.metadata["full_text"].startswith("Still waiting.\n\nOn Mon, 2 Nov 2026, Ann wrote:")
    assert Ticket.objects.filter(channel=channel).count() == 2
    assert Message.objects.filter(channel=channel).count() == 3
    statuses = dict(
        InboundEvent.objects.filter(channel=channel).values_list("provider_id", "status").order_by("provider_id")
    )
    assert statuses == {
        "<m1@mail.example>": "processed",
        "<m2@mail.example>": "processed",
        "<m3@mail.example>": "processed",
        "<m4@mail.example>": "quarantined",
    }
    quarantined = InboundEvent.objects.get(channel=channel, provider_id="<m4@mail.example>")
    assert quarantined.reason == "no sender address"
    assert bytes(quarantined.raw) == MESSAGES[3]
    assert quarantined.content_type == "message/rfc822"


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_importing_a_source_ingests_threads_and_quarantines(channel, tmp_path, kind):
    source = tmp_path / kind
    WRITERS[kind](source, MESSAGES)

    out, err = run(channel, source)

    assert out == FIRST_RUN
    assert err == ""
    assert_imported(channel)


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_importing_twice_makes_nothing_twice(channel, tmp_path, kind):
    source = tmp_path / kind
    WRITERS[kind](source, MESSAGES)
    run(channel, source)

    out, _ = run(channel, source)

    assert out == SECOND_RUN
    assert InboundEvent.objects.filter(channel=channel).count() == 4
    assert_imported(channel)


def test_single_eml_files_are_imported_in_the_order_given(channel, tmp_path):
    paths = []
    for index, raw in enumerate(MESSAGES, start=1):
        path = tmp_path / f"message-{index}.eml"
        path.write_bytes(raw)
        paths.append(path)

    out, _ = run(channel, *paths)

    assert out == FIRST_RUN
    assert_imported(channel)


def test_the_same_message_in_two_sources_is_imported_once(channel, tmp_path):
    write_mbox(tmp_path / "archive.mbox", MESSAGES)
    write_directory(tmp_path / "files", MESSAGES[:2])

    out, _ = run(channel, tmp_path / "archive.mbox", tmp_path / "files")

    assert out.splitlines()[0] == (
        "6 messages: 2 ingested as new tickets, 1 threaded onto existing tickets, 2 duplicates, 1 quarantined, 0 failed"
    )
    assert Message.objects.filter(channel=channel).count() == 3


def test_a_message_without_message_id_is_a_duplicate_when_imported_again(channel, tmp_path):
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message.set_content("No id")
    (tmp_path / "a.eml").write_bytes(message.as_bytes())

    run(channel, tmp_path / "a.eml")
    out, _ = run(channel, tmp_path / "a.eml")

    assert out.startswith("1 messages: 0 ingested as new tickets, 0 threaded onto existing tickets, 1 duplicates")
    assert Message.objects.filter(channel=channel).count() == 1
    assert Message.objects.get(channel=channel).provider_id.endswith("@no-message-id.invalid>")


def test_a_large_import_reports_progress_on_stderr(channel, tmp_path):
    messages = [
        email_bytes(message_id=f"<bulk{n}@mail.example>", sender=f"c{n}@example.com", day=1, body=f"Hello {n}")
        for n in range(205)
    ]
    write_mbox(tmp_path / "bulk.mbox", messages)

    out, err = run(channel, tmp_path / "bulk.mbox")

    assert err == "100 messages read\n200 messages read\n"
    assert out == (
        "205 messages: 205 ingested as new tickets, 0 threaded onto existing tickets, 0 duplicates, "
        "0 quarantined, 0 failed\n"
    )


def test_quarantine_reasons_are_grouped(channel, tmp_path):
    write_directory(
        tmp_path / "bad",
        [
            b"not an email at all",
            b"neither is this",
            email_bytes(message_id="<x1@mail.example>", sender="MAILER DAEMON", day=1, body="bounce"),
        ],
    )

    out, _ = run(channel, tmp_path / "bad")

    assert out == (
        "3 messages: 0 ingested as new tickets, 0 threaded onto existing tickets, 0 duplicates, "
        "3 quarantined, 0 failed\n"
        "  2 quarantined: not an email message\n"
        "  1 quarantined: no sender address\n"
    )
    assert Message.objects.count() == 0


def test_a_channel_that_is_not_email_is_refused(tmp_path):
    api_channel = ChannelFactory(kind="api")
    write_directory(tmp_path / "files", MESSAGES)

    with pytest.raises(CommandError, match=f"channel {api_channel.pk} is a api channel, not an email channel"):
        run(api_channel, tmp_path / "files")

    assert InboundEvent.objects.count() == 0


def test_an_unknown_channel_is_refused(tmp_path):
    with pytest.raises(CommandError, match="no channel with id 999999"):
        call_command("ingest_email", "--channel", "999999", str(tmp_path), stdout=StringIO())


def test_a_missing_path_is_refused_before_anything_is_imported(channel, tmp_path):
    write_directory(tmp_path / "files", MESSAGES)

    with pytest.raises(CommandError, match="no such file or directory"):
        run(channel, tmp_path / "files", tmp_path / "missing.mbox")

    assert InboundEvent.objects.count() == 0


def test_an_unexpected_error_marks_the_event_failed_and_the_import_goes_on(channel, monkeypatch):
    def ingest_fails(*, channel, inbound, **options):
        raise RuntimeError("database went away")

    monkeypatch.setattr(inbound_dispatch, "message_ingest", ingest_fails)

    outcome = email_import(channel=channel, raw=MESSAGES[0])

    assert outcome.status == "failed"
    assert outcome.reason == "RuntimeError: database went away"
    event = InboundEvent.objects.get(pk=outcome.event_id)
    assert (event.status, event.attempts) == ("failed", 1)
    assert Message.objects.count() == 0

    monkeypatch.undo()
    retried = email_import(channel=channel, raw=MESSAGES[0])

    assert retried.status == "ingested"
    assert InboundEvent.objects.get(pk=outcome.event_id).status == "processed"


def test_reads_one_message_from_standard_input_like_an_mta_pipe(channel):
    out = StringIO()
    stdin = BytesIO(MESSAGES[0])

    call_command("ingest_email", "--channel", str(channel.pk), "-", stdin=stdin, stdout=out, stderr=StringIO())

    assert out.getvalue().startswith("1 messages: 1 ingested as new tickets")
    event = InboundEvent.objects.get(channel=channel)
    assert bytes(event.raw) == MESSAGES[0]
    assert Message.objects.get(channel=channel).text.strip() == "My order is late."


def test_a_message_that_cannot_be_stored_exits_with_tempfail_so_the_mta_retries(channel, monkeypatch):
    from django.db import OperationalError

    from channels_app.management.commands import ingest_email

    def database_down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(ingest_email, "email_import", database_down)
    err = StringIO()

    with pytest.raises(SystemExit) as exit_info:
        call_command("ingest_email", "--channel", str(channel.pk), "-", stdin=BytesIO(MESSAGES[0]), stderr=err)

    assert exit_info.value.code == 75
    assert "try again later" in err.getvalue()
    assert not InboundEvent.objects.exists()


def test_a_bulk_import_commits_in_batches_and_a_bad_message_affects_no_other(channel):
    from channels_app.services.mailbox_import import email_import_many

    messages = [(f"m{index}", raw) for index, raw in enumerate([*MESSAGES, b"\x00\xff not an email"])]

    outcomes = dict(email_import_many(channel=channel, messages=messages, batch_size=2))

    assert {label: outcome.status for label, outcome in outcomes.items()} == {
        "m0": "ingested",
        "m1": "ingested",
        "m2": "threaded",
        "m3": "quarantined",
        "m4": "quarantined",
    }
    assert InboundEvent.objects.filter(channel=channel).count() == 5
    assert Ticket.objects.count() == 2
