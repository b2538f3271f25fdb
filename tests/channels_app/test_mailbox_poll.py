"""Polling IMAP mailboxes, against a real Dovecot: each message stored here exactly once, and marked or moved on
the server only after it is committed, whatever fails in between."""

import email.policy
import logging
import re
from datetime import timedelta
from email.message import EmailMessage

import pytest
from django.db import OperationalError
from django.utils import timezone
from imapclient import IMAPClient

from channels_app.models import Channel, ImapMailboxState, InboundEvent
from channels_app.services import inbound_receive
from channels_app.tasks.mailboxes import poll_imap_mailbox, poll_imap_mailboxes
from tests.channels_app.conftest import IMAP_USERS
from tests.channels_app.imap_server import DroppingRelay, free_port
from tests.factories import ChannelFactory
from tickets.models import Message, Ticket

# Each message is committed before the server hears about it: that needs real commits.
pytestmark = pytest.mark.django_db(transaction=True)

SEEN = b"\\Seen"
APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")


def email_bytes(number: int, *, in_reply_to: str = "", sender: str | None = "Ann <ann@example.com>") -> bytes:
    message = EmailMessage()
    if sender:
        message["From"] = sender
    message["To"] = "support@desk.example"
    message["Subject"] = f"Question {number}"
    message["Message-ID"] = f"<m{number}@mail.example>"
    message["Date"] = f"Mon, {number:02d} Nov 2026 10:00:00 +0000"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    message.set_content(f"Body of message {number}.")
    return message.as_bytes(policy=email.policy.SMTP)


class Mailbox:
    """The test's own IMAP session for one user: puts mail in and looks at what the poller left on the server."""

    def __init__(self, server, user: str):
        self.server, self.user = server, user

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.server.port, ssl=False, timeout=5)
        client.login(self.user, IMAP_USERS[self.user])
        return client

    def empty(self) -> None:
        with self.client() as client:
            for _, _, name in client.list_folders():
                if name != "INBOX":
                    client.delete_folder(name)
            client.select_folder("INBOX")
            client.delete_messages(client.search(["ALL"]), silent=True)
            client.expunge()

    def append(self, *messages: bytes, folder: str = "INBOX") -> list[int]:
        """The UIDs the server gave the messages (UIDs go on growing across tests: the folders are reused)."""
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            responses = [client.append(folder, raw) for raw in messages]
        return [int(APPENDUID.search(response).group(1)) for response in responses]

    def contents(self, folder: str = "INBOX") -> list[tuple[bytes, bool]]:
        """(raw bytes, is seen) of each message in UID order."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            fetched = client.fetch(client.search(["ALL"]), ["BODY.PEEK[]", "FLAGS"])
            return [(fetched[uid][b"BODY[]"], SEEN in fetched[uid][b"FLAGS"]) for uid in sorted(fetched)]

    def uidvalidity(self, folder: str) -> int:
        with self.client() as client:
            return client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"]


@pytest.fixture
def desk(dovecot) -> Mailbox:
    mailbox = Mailbox(dovecot, "desk")
    mailbox.empty()
    return mailbox


@pytest.fixture
def sales(dovecot) -> Mailbox:
    mailbox = Mailbox(dovecot, "sales")
    mailbox.empty()
    return mailbox


def imap_channel(server, user: str, *, password: str | None = None, port: int | None = None, **options) -> Channel:
    return ChannelFactory(
        kind=Channel.Kind.EMAIL,
        address=f"{user}@desk.example",
        continue_open_ticket=False,
        settings={
            "imap_host": "127.0.0.1",
            "imap_port": port or server.port,
            "imap_ssl": False,
            "imap_username": user,
            **options,
        },
        secrets={"imap_password": password or IMAP_USERS[user]},
    )


def stored_message_ids(channel: Channel) -> list[str]:
    return sorted(InboundEvent.objects.filter(channel=channel).values_list("provider_id", flat=True))


def state_of(channel: Channel) -> ImapMailboxState:
    return ImapMailboxState.objects.get(channel=channel)


# --- The happy path ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("move_to", ["", "Processed"], ids=["mark-seen", "move"])
def test_new_mail_becomes_tickets_once_and_is_marked_or_moved_on_the_server(
    dovecot, desk, move_to, django_assert_num_queries
):
    messages = [
        email_bytes(1),
        email_bytes(2, sender="bob@example.com"),
        email_bytes(3, in_reply_to="<m1@mail.example>"),
    ]
    uids = desk.append(*messages)
    channel = imap_channel(dovecot, "desk", imap_move_to=move_to)

    assert poll_imap_mailbox.delay(channel.pk).get() == "ok"

    events = InboundEvent.objects.filter(channel=channel).order_by("pk")
    assert [bytes(event.raw) for event in events] == messages
    assert {event.status for event in events} == {InboundEvent.Status.PROCESSED}
    assert Ticket.objects.count() == 2
    assert Message.objects.filter(ticket__subject="Question 1").count() == 2  # the reply threaded
    if move_to:
        assert desk.contents("INBOX") == []
        assert [raw for raw, _ in desk.contents("Processed")] == messages
    else:
        assert desk.contents("INBOX") == [(raw, True) for raw in messages]
    state = state_of(channel)
    assert (state.uidvalidity, state.last_uid, state.last_marked_uid) == (desk.uidvalidity("INBOX"), uids[-1], uids[-1])
    assert (state.consecutive_failures, state.last_error, state.lease_token) == (0, "", None)

    # A second poll finds nothing new and changes nothing, in a fixed number of queries.
    with django_assert_num_queries(6):
        assert poll_imap_mailbox.delay(channel.pk).get() == "ok"
    assert InboundEvent.objects.filter(channel=channel).count() == 3
    assert Message.objects.count() == 3
    assert state_of(channel).last_uid == uids[-1]


def test_a_batch_takes_the_oldest_messages_and_the_next_poll_the_rest(dovecot, desk):
    desk.append(*(email_bytes(number) for number in range(1, 6)))
    channel = imap_channel(dovecot, "desk", imap_batch_size=2)

    poll_imap_mailbox.delay(channel.pk)
    assert stored_message_ids(channel) == ["<m1@mail.example>", "<m2@mail.example>"]
    assert [seen for _, seen in desk.contents()] == [True, True, False, False, False]

    poll_imap_mailbox.delay(channel.pk)
    poll_imap_mailbox.delay(channel.pk)
    assert stored_message_ids(channel) == [f"<m{number}@mail.example>" for number in range(1, 6)]
    assert [seen for _, seen in desk.contents()] == [True] * 5


# --- Failures between fetching and marking --------------------------------------------------------------------


@pytest.mark.parametrize("move_to", ["", "Processed"], ids=["mark-seen", "move"])
def test_a_database_failure_while_storing_leaves_the_message_untouched_for_the_next_poll(
    dovecot, desk, move_to, monkeypatch
):
    messages = [email_bytes(1), email_bytes(2), email_bytes(3)]
    uids = desk.append(*messages)
    channel = imap_channel(dovecot, "desk", imap_move_to=move_to)
    real_receive = inbound_receive.inbound_event_receive

    def database_fails_on_the_second(**kwargs):
        if kwargs["provider_id"] == "<m2@mail.example>":
            raise OperationalError("database is locked")
        return real_receive(**kwargs)

    monkeypatch.setattr(inbound_receive, "inbound_event_receive", database_fails_on_the_second)

    assert poll_imap_mailbox.delay(channel.pk).get() == "failed"

    assert stored_message_ids(channel) == ["<m1@mail.example>"]
    if move_to:
        assert [raw for raw, _ in desk.contents("Processed")] == messages[:1]
        assert desk.contents("INBOX") == [(messages[1], False), (messages[2], False)]
    else:
        assert desk.contents() == [(messages[0], True), (messages[1], False), (messages[2], False)]
    state = state_of(channel)
    assert (state.last_uid, state.last_marked_uid, state.consecutive_failures) == (uids[0], uids[0], 1)
    assert state.last_error == "OperationalError: database is locked"

    monkeypatch.setattr(inbound_receive, "inbound_event_receive", real_receive)
    assert poll_imap_mailbox.delay(channel.pk).get() == "ok"

    assert stored_message_ids(channel) == ["<m1@mail.example>", "<m2@mail.example>", "<m3@mail.example>"]
    assert Ticket.objects.count() == 3
    if move_to:
        assert desk.contents("INBOX") == []
        assert [raw for raw, _ in desk.contents("Processed")] == messages
    else:
        assert desk.contents() == [(raw, True) for raw in messages]
    assert state_of(channel).consecutive_failures == 0


@pytest.mark.parametrize(
    ("command", "drop_at", "stored_before_drop", "seen_before_drop"),
    [
        # The connection dies as the third message is fetched: two are stored and marked.
        (b"UID FETCH", 3, 2, [True, True, False, False, False]),
        # It dies as the second message is to be marked: that one is stored (committed) but still unseen there.
        (b"UID STORE", 2, 2, [True, False, False, False, False]),
    ],
    ids=["drop-at-fetch", "drop-at-mark"],
)
def test_a_connection_dropped_mid_batch_is_resumed_from_the_committed_state(
    dovecot, desk, command, drop_at, stored_before_drop, seen_before_drop
):
    messages = [email_bytes(number) for number in range(1, 6)]
    uids = desk.append(*messages)
    relay = DroppingRelay(dovecot.port, command=command, drop_at=drop_at)
    channel = imap_channel(dovecot, "desk", port=relay.port)
    try:
        assert poll_imap_mailbox.delay(channel.pk).get() == "failed"
        assert InboundEvent.objects.filter(channel=channel).count() == stored_before_drop
        assert [seen for _, seen in desk.contents()] == seen_before_drop
        state = state_of(channel)
        assert state.consecutive_failures == 1
        # imaplib's "abort" for a connection that went away; a write into the cut socket may fail first instead.
        assert state.last_error.startswith(("abort: ", "BrokenPipeError: ", "ConnectionResetError: ")), state.last_error

        assert poll_imap_mailbox.delay(channel.pk).get() == "ok"
    finally:
        relay.close()

    assert relay.has_dropped
    assert stored_message_ids(channel) == [f"<m{number}@mail.example>" for number in range(1, 6)]
    assert Ticket.objects.count() == 5
    assert desk.contents() == [(raw, True) for raw in messages]
    # The resumed poll fetched only what was not committed: nothing twice.
    fetched_again = [line for line in relay.commands[1] if b"UID FETCH" in line.upper()]
    assert len(fetched_again) == 5 - stored_before_drop
    state = state_of(channel)
    assert (state.last_uid, state.last_marked_uid, state.consecutive_failures) == (uids[-1], uids[-1], 0)


def test_a_new_uidvalidity_rescans_the_folder_without_duplicates(dovecot, desk):
    desk.append(email_bytes(1), email_bytes(2), folder="Support")
    channel = imap_channel(dovecot, "desk", imap_folder="Support")
    poll_imap_mailbox.delay(channel.pk)
    old_uidvalidity = state_of(channel).uidvalidity

    # The folder is recreated (e.g. restored from a backup): same messages, new UIDs, one new message.
    with desk.client() as client:
        client.delete_folder("Support")
    uids = desk.append(email_bytes(3), email_bytes(1), email_bytes(2), folder="Support")
    assert desk.uidvalidity("Support") != old_uidvalidity

    assert poll_imap_mailbox.delay(channel.pk).get() == "ok"

    assert stored_message_ids(channel) == ["<m1@mail.example>", "<m2@mail.example>", "<m3@mail.example>"]
    assert Ticket.objects.count() == 3
    assert Message.objects.count() == 3
    assert [seen for _, seen in desk.contents("Support")] == [True, True, True]
    state = state_of(channel)
    assert (state.uidvalidity, state.last_uid) == (desk.uidvalidity("Support"), uids[-1])


# --- Mailboxes that fail, and the rest ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("breakage", "error_start"),
    [
        ({"password": "not-the-password"}, "LoginError: "),
        ({"port": "closed"}, "ConnectionRefusedError: "),
    ],
    ids=["wrong-password", "unreachable"],
)
def test_a_failing_mailbox_is_recorded_on_its_state_and_the_others_are_still_polled(
    dovecot, desk, sales, breakage, error_start, caplog
):
    desk.append(email_bytes(1))
    sales.append(email_bytes(2))
    if breakage.get("port") == "closed":
        breakage = {"port": free_port()}
    broken = imap_channel(dovecot, "desk", **breakage)
    working = imap_channel(dovecot, "sales")
    ChannelFactory(kind=Channel.Kind.EMAIL, address="plain@desk.example")  # no IMAP: not polled
    ChannelFactory(kind=Channel.Kind.SMS, settings={"imap_host": "127.0.0.1"})  # not email: not polled

    with caplog.at_level(logging.WARNING, logger="channels_app.services.mailbox_poll"):
        assert poll_imap_mailboxes.delay().get() == 2
        poll_imap_mailboxes.delay()

    assert stored_message_ids(working) == ["<m2@mail.example>"]
    assert stored_message_ids(broken) == []
    assert desk.contents() == [(email_bytes(1), False)]
    state = state_of(broken)
    assert state.last_error.startswith(error_start)
    assert "not-the-password" not in state.last_error
    assert state.consecutive_failures == 2
    assert state.last_error_at is not None
    assert state.last_success_at is None
    assert state_of(working).consecutive_failures == 0
    assert ImapMailboxState.objects.count() == 2
    failures = [record for record in caplog.records if record.getMessage() == "channels_app.imap_poll_failed"]
    assert [record.channel_id for record in failures] == [broken.pk, broken.pk]


@pytest.mark.parametrize(
    ("options", "secrets", "error"),
    [
        (
            {"imap_username": "desk"},
            {},
            "ImapConfigError: imap_username (settings) and imap_password (secrets) are required",
        ),
        (
            {"imap_username": "desk", "imap_move_to": "INBOX"},
            {"imap_password": "x"},
            "ImapConfigError: imap_move_to must differ from imap_folder",
        ),
    ],
    ids=["no-password", "move-to-itself"],
)
def test_a_mailbox_configured_wrongly_is_recorded_as_failing(options, secrets, error):
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, settings={"imap_host": "127.0.0.1", **options}, secrets=secrets)

    assert poll_imap_mailbox.delay(channel.pk).get() == "failed"

    state = state_of(channel)
    assert (state.last_error, state.consecutive_failures) == (error, 1)
    assert InboundEvent.objects.count() == 0


def test_a_poll_while_another_holds_the_mailbox_does_nothing_until_its_lease_runs_out(dovecot, desk):
    desk.append(email_bytes(1))
    channel = imap_channel(dovecot, "desk")
    ImapMailboxState.objects.create(channel=channel, folder="INBOX", leased_until=timezone.now() + timedelta(minutes=1))

    assert poll_imap_mailbox.delay(channel.pk).get() == "busy"
    assert InboundEvent.objects.count() == 0
    assert desk.contents() == [(email_bytes(1), False)]

    ImapMailboxState.objects.update(leased_until=timezone.now() - timedelta(seconds=1))  # its holder died
    assert poll_imap_mailbox.delay(channel.pk).get() == "ok"
    assert stored_message_ids(channel) == ["<m1@mail.example>"]


# --- Bad mail -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (email_bytes(1, sender=None), "no sender address"),
        (b"\x8f\xfe garbage without any header\r\n", "not an email message"),
    ],
    ids=["no-from", "garbage"],
)
def test_a_bad_message_is_stored_raw_quarantined_and_still_marked_on_the_server(dovecot, desk, raw, reason):
    desk.append(raw)
    channel = imap_channel(dovecot, "desk")

    assert poll_imap_mailbox.delay(channel.pk).get() == "ok"

    event = InboundEvent.objects.get(channel=channel)
    assert bytes(event.raw) == raw
    assert (event.status, event.reason) == (InboundEvent.Status.QUARANTINED, reason)
    assert Ticket.objects.count() == 0
    assert desk.contents() == [(raw, True)]  # it is safely ours: the next poll must not see it again
