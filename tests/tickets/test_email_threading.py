"""Email threading end to end: real RFC 822 messages through ``email_import``, our replies through ``reply_create``
and the email adapter (Django's locmem backend, or an anymail backend that reports a substituted id), and the
customers' answers built from the Message-ID, Reply-To and subject that actually went out."""

import email
import email.policy
import uuid
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import channels_app.providers.email.adapter  # noqa: F401  (registers the email adapter)
import realtime.publish
from channels_app.models import Channel
from channels_app.services.mailbox_import import email_import
from channels_app.threading_refs import our_message_id, reply_token
from customers.models import Customer
from tests.factories import AgentFactory, ChannelFactory
from tickets.models import Message, MessageAlias, Ticket, TicketParticipant
from tickets.services.replies import reply_create
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

DESK = "support@desk.example"
ANN = "ann@example.com"
BOB = "bob@example.com"  # Ann's colleague, on Cc of her first email
EVE = "eve@elsewhere.example"  # nobody on the ticket
FIRST_ID = "<ann-first@mail.example.com>"


class SesLikeBackend(AnymailTestBackend):
    """anymail's test backend, reporting ids shaped like Amazon SES's: SES delivers the message under
    ``<{that id}@{region}.amazonses.com>`` instead of our Message-ID."""

    def get_esp_message_id(self, message):
        return f"0102018c{mail.outbox.index(message):08x}-5a1e4f2b-3c9d-4e7a-8b6f-1d2c3b4a5f6e-000000"


class RewritingBackend(LocmemBackend):
    """A relay that replaces the Message-ID on the way out and says so on the message it was given."""

    def send_messages(self, messages):
        for message in messages:
            message.extra_headers["Message-ID"] = f"<relay-{len(mail.outbox)}-7f3a9c2e5b@relay.example>"
        return super().send_messages(messages)


@pytest.fixture
def channel() -> Channel:
    return ChannelFactory(kind=Channel.Kind.EMAIL, name="Acme Support", address=DESK, continue_open_ticket=False)


@pytest.fixture
def agent():
    return AgentFactory()


def rfc822(
    *,
    sender: str = ANN,
    to: str = DESK,
    cc: str = "",
    subject: str = "Refund for A-1",
    message_id: str = "",
    in_reply_to: str = "",
    references: str = "",
    body: str = "Hello",
    headers: dict | None = None,
) -> bytes:
    # Long ids (SES's are ~90 characters) stay on one line, as mail clients write them; Python's default would
    # encode them as RFC 2047 words, which no client does.
    message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@mail.test>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


def receive(channel: Channel, raw: bytes):
    """Import ``raw`` as the mailbox would; returns (outcome status, the stored message)."""
    outcome = email_import(channel=channel, raw=raw)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    message = Message.objects.select_related("ticket", "customer").filter(provider_id=parsed["Message-ID"]).first()
    return outcome.status, message


def sent_reply(ticket: Ticket, agent, django_capture_on_commit_callbacks, text: str = "We are on it."):
    """Reply through the real outbound path; returns the email as it left (headers read back from its bytes)."""
    before = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        reply_create(ticket=ticket, author=agent, text=text)
    assert len(mail.outbox) == before + 1
    return mail.outbox[-1], email.message_from_bytes(mail.outbox[-1].message().as_bytes(), policy=email.policy.default)


@pytest.fixture
def conversation(channel, agent, django_capture_on_commit_callbacks):
    """Ann wrote (Bob on Cc), an agent answered. Returns (ticket, the answer as sent)."""
    status, first = receive(channel, rfc822(cc=BOB, message_id=FIRST_ID))
    assert status == "ingested"
    _, sent = sent_reply(first.ticket, agent, django_capture_on_commit_callbacks)
    return first.ticket, sent


def customer_of(address: str) -> Customer:
    return Customer.objects.get(identities__value=address)


# --- 1. In-Reply-To / References ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "habit",
    [
        "in_reply_to_only",
        "outlook_references_only",
        "gmail_rewritten_subject",
        "apple_mail",
        "ours_in_references_newest_is_customers_unknown_own",
        "newest_is_customers_stored_own",
    ],
)
def test_a_reply_threads_by_its_headers_whatever_the_client_keeps(habit, channel, conversation):
    ticket, sent = conversation
    ours = sent["Message-ID"]
    fields = {
        "in_reply_to_only": {"in_reply_to": ours, "subject": "Re: Refund for A-1"},
        "outlook_references_only": {
            "references": f"{FIRST_ID} {ours}",
            "subject": "RE: Refund for A-1",
            "headers": {"Thread-Index": "AQHZxyz1234567890abcdef==", "Thread-Topic": "Refund for A-1"},
        },
        "gmail_rewritten_subject": {"in_reply_to": ours, "references": f"{FIRST_ID} {ours}", "subject": "Other"},
        "apple_mail": {"in_reply_to": ours, "references": f"{FIRST_ID} {ours}", "subject": sent["Subject"]},
        # Ann answers her own note to a colleague that never reached us; our id is further back.
        "ours_in_references_newest_is_customers_unknown_own": {
            "in_reply_to": "<ann-note@mail.example.com>",
            "references": f"{ours} <ann-note@mail.example.com>",
            "subject": "Forgot one thing",
        },
        "newest_is_customers_stored_own": {"in_reply_to": FIRST_ID, "subject": "And another thing"},
    }[habit]
    fields.setdefault("subject", "x")

    status, message = receive(channel, rfc822(body="Any news?", **fields))

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.customer_id == ticket.customer_id
    assert message.metadata["threaded_by"] == "in_reply_to"
    assert "sender_is_participant" not in message.metadata
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize("backend", ["ses_like", "rewriting"])
def test_a_reply_to_the_id_a_provider_substituted_for_ours_threads(
    backend, channel, agent, django_capture_on_commit_callbacks
):
    channel.settings = {
        "email_backend": {
            "ses_like": f"{__name__}.SesLikeBackend",
            "rewriting": f"{__name__}.RewritingBackend",
        }[backend]
    }
    channel.save()
    _, first = receive(channel, rfc822(message_id=FIRST_ID))
    outgoing, _ = sent_reply(first.ticket, agent, django_capture_on_commit_callbacks)
    reply = Message.objects.get(direction=Message.Direction.OUTBOUND)
    if backend == "ses_like":
        ses_id = outgoing.anymail_status.message_id
        assert ses_id.startswith("0102018c")
        delivered_as = f"<{ses_id}@eu-west-1.amazonses.com>"
        assert list(reply.aliases.values_list("value", flat=True)) == [ses_id]
    else:
        delivered_as = outgoing.extra_headers["Message-ID"]
        assert delivered_as.startswith("<relay-")
        assert list(reply.aliases.values_list("value", flat=True)) == [delivered_as]
    # Our own id is still the message's provider id; the substitute is an alias.
    assert reply.provider_id == our_message_id(message_id=reply.pk, domain="desk.example")

    # The client quotes only what it received, and the subject lost its reference.
    status, message = receive(channel, rfc822(in_reply_to=delivered_as, references=delivered_as, subject="Re: ok"))

    assert status == "threaded"
    assert message.ticket_id == first.ticket_id
    assert message.metadata["threaded_by"] == "in_reply_to"


def test_an_alias_only_threads_when_the_provider_reported_it(channel, conversation):
    ticket, _ = conversation
    unknown = "<0102018c00000000-5a1e4f2b-3c9d-4e7a-8b6f-1d2c3b4a5f6e-000000@eu-west-1.amazonses.com>"

    status, message = receive(channel, rfc822(in_reply_to=unknown, subject="Re: ok"))

    assert status == "ingested"
    assert message.ticket_id != ticket.pk
    assert MessageAlias.objects.count() == 0


# --- Who may thread by an id ----------------------------------------------------------------------------------


def test_someone_else_quoting_a_customers_message_id_threads_and_becomes_a_participant(channel, conversation):
    """Only those who received Ann's email know its Message-ID (her colleague in Cc, a list it went to): by the
    issue's first rule the answer threads, from Eve herself, noted as not yet a participant."""
    ticket, _ = conversation

    status, message = receive(channel, rfc822(sender=EVE, in_reply_to=FIRST_ID, subject="Re: Refund for A-1"))

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.customer_id == customer_of(EVE).pk != ticket.customer_id
    assert message.metadata["sender_is_participant"] is False
    assert TicketParticipant.objects.get(ticket=ticket, email=EVE).role == TicketParticipant.Role.SENDER


def test_a_message_id_stored_on_another_channel_threads_nothing(channel, conversation):
    ticket, _ = conversation
    other = ChannelFactory(kind="email", address="sales@desk.example", continue_open_ticket=False)

    status, message = receive(other, rfc822(sender=EVE, in_reply_to=FIRST_ID, subject="Re: Refund for A-1"))

    assert status == "ingested"
    assert message.ticket_id != ticket.pk


def test_a_participant_quoting_a_customers_message_id_threads_as_themselves(channel, conversation):
    ticket, _ = conversation

    status, message = receive(channel, rfc822(sender=BOB, in_reply_to=FIRST_ID, subject="Re: Refund for A-1"))

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.customer_id == customer_of(BOB).pk != ticket.customer_id
    assert message.metadata["threaded_by"] == "in_reply_to"
    ticket.refresh_from_db()
    assert ticket.customer.identities.get().value == ANN


def test_a_stranger_holding_our_signed_id_threads_and_is_noted(
    channel, conversation, agent, django_capture_on_commit_callbacks
):
    """Ann forwarded our answer to Eve, who answers it: our signed id is the capability. Nothing goes to Eve."""
    ticket, sent = conversation

    status, message = receive(
        channel, rfc822(sender=EVE, in_reply_to=sent["Message-ID"], subject="Fwd: Re: Refund", body="I can help")
    )

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.customer_id == customer_of(EVE).pk
    assert message.metadata["sender_is_participant"] is False
    assert TicketParticipant.objects.get(ticket=ticket, email=EVE).role == TicketParticipant.Role.SENDER
    _, answer = sent_reply(ticket, agent, django_capture_on_commit_callbacks)
    assert parseaddr(answer["To"])[1] == ANN


def test_a_forged_signed_id_threads_nothing(channel, conversation):
    ticket, sent = conversation
    _, number, mac_and_domain = sent["Message-ID"].split(".", 2)
    forged = f"<hd.{int(number) + 1}.{mac_and_domain}"  # another message's number under this one's signature

    status, message = receive(channel, rfc822(sender=EVE, in_reply_to=forged, subject="Re: Refund"))

    assert status == "ingested"
    assert message.ticket_id != ticket.pk


# --- 2. Reply token in a plus-address -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["to", "cc", "delivered_to", "x_original_to", "upper_case"])
def test_a_reply_without_threading_headers_threads_by_its_plus_address(where, channel, conversation):
    ticket, sent = conversation
    plus_address = parseaddr(sent["Reply-To"])[1]
    assert plus_address == f"support+{reply_token(ticket_id=ticket.pk)}@desk.example"
    fields = {
        "to": {"to": plus_address},
        "cc": {"to": "someone@example.com", "cc": plus_address},
        "delivered_to": {"headers": {"Delivered-To": plus_address}},
        "x_original_to": {"headers": {"X-Original-To": plus_address}},
        "upper_case": {"to": plus_address.upper()},
    }[where]

    status, message = receive(channel, rfc822(subject="Something else entirely", **fields))

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.metadata["threaded_by"] == "plus_address"


def test_a_forged_reply_token_threads_nothing(channel, conversation):
    ticket, _ = conversation
    forged = f"support+t{ticket.pk}-0000000000@desk.example"

    status, message = receive(channel, rfc822(to=forged, subject="Hello"))

    assert status == "ingested"
    assert message.ticket_id != ticket.pk


def test_a_stranger_writing_to_the_plus_address_threads_and_is_noted(channel, conversation):
    """A new colleague Ann forwarded the thread to writes to the Reply-To: the signed token is the capability."""
    ticket, sent = conversation

    status, message = receive(channel, rfc822(sender=EVE, to=parseaddr(sent["Reply-To"])[1], subject="Hi"))

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.customer_id == customer_of(EVE).pk
    assert message.metadata["threaded_by"] == "plus_address"
    assert message.metadata["sender_is_participant"] is False


# --- 3. Ticket reference in the subject -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject", ["Re: Refund for A-1 [#{id}]", "Re: Fwd: [#{id}]", "RE: AW: fwd: Refund [ #{id} ]", "[#{id}]"]
)
@pytest.mark.parametrize("sender", [ANN, BOB])
def test_a_subject_reference_threads_for_the_customer_and_participants(subject, sender, channel, conversation):
    ticket, _ = conversation

    status, message = receive(channel, rfc822(sender=sender, subject=subject.format(id=ticket.pk)))

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.customer_id == customer_of(sender).pk
    assert message.metadata["threaded_by"] == "subject_reference"


def test_a_subject_reference_from_a_stranger_starts_a_new_ticket_and_is_noted(channel, conversation):
    ticket, _ = conversation
    events_before = TimelineEvent.objects.filter(ticket=ticket).count()

    status, message = receive(channel, rfc822(sender=EVE, subject=f"Re: Refund [#{ticket.pk}]", body="Pay me"))

    assert status == "ingested"
    assert message.ticket_id != ticket.pk
    assert message.ticket.customer_id == customer_of(EVE).pk
    assert message.metadata["ignored_subject_reference"] == [ticket.pk]
    assert "threaded_by" not in message.metadata
    assert ticket.messages.count() == 2
    assert TimelineEvent.objects.filter(ticket=ticket).count() == events_before


def test_a_subject_reference_to_no_ticket_is_noted_the_same_way(channel, conversation):
    status, message = receive(channel, rfc822(sender=ANN, subject="Re: [#999999]"))

    assert status == "ingested"
    assert message.metadata["ignored_subject_reference"] == [999999]


# --- Precedence -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("other_reference", ["subject", "plus_address"])
def test_in_reply_to_wins_over_a_disagreeing_later_rule(
    other_reference, channel, conversation, agent, django_capture_on_commit_callbacks
):
    ticket, sent = conversation
    _, other_first = receive(channel, rfc822(subject="Another question", message_id="<ann-other@mail.example.com>"))
    other = other_first.ticket
    _, other_sent = sent_reply(other, agent, django_capture_on_commit_callbacks)
    fields = (
        {"subject": other_sent["Subject"]}
        if other_reference == "subject"
        else {"to": parseaddr(other_sent["Reply-To"])[1], "subject": "Re: hi"}
    )

    status, message = receive(channel, rfc822(in_reply_to=sent["Message-ID"], **fields))

    assert status == "threaded"
    assert message.ticket_id == ticket.pk != other.pk
    assert message.metadata["threaded_by"] == "in_reply_to"


def test_a_plus_address_wins_over_a_disagreeing_subject(
    channel, conversation, agent, django_capture_on_commit_callbacks
):
    ticket, sent = conversation
    _, other_first = receive(channel, rfc822(subject="Another question", message_id="<ann-other@mail.example.com>"))

    status, message = receive(
        channel, rfc822(to=parseaddr(sent["Reply-To"])[1], subject=f"Re: [#{other_first.ticket_id}]")
    )

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.metadata["threaded_by"] == "plus_address"


# --- Reopen window, on every path -----------------------------------------------------------------------------


def _solve(ticket: Ticket, days_ago: int) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(
        status=Ticket.Status.SOLVED, solved_at=timezone.now() - timedelta(days=days_ago)
    )


def _answer_by(path: str, ticket: Ticket, sent, **fields) -> bytes:
    if path == "in_reply_to":
        fields.update(in_reply_to=sent["Message-ID"], subject="Re: thanks")
    elif path == "plus_address":
        fields.update(to=parseaddr(sent["Reply-To"])[1], subject="Re: thanks")
    else:
        fields.update(subject=f"Re: thanks [#{ticket.pk}]")
    return rfc822(**fields)


@pytest.mark.parametrize("path", ["in_reply_to", "plus_address", "subject_reference"])
def test_a_reply_after_the_reopen_window_starts_a_linked_follow_up(path, settings, channel, conversation):
    settings.HELPDESK = {**settings.HELPDESK, "REOPEN_WINDOW_DAYS": 7}
    ticket, sent = conversation
    _solve(ticket, days_ago=8)

    status, message = receive(channel, _answer_by(path, ticket, sent, body="It broke again"))

    assert status == "ingested"
    assert message.ticket.follow_up_of_id == ticket.pk
    assert message.ticket.customer_id == ticket.customer_id
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.SOLVED


@pytest.mark.parametrize("path", ["in_reply_to", "plus_address", "subject_reference"])
def test_a_reply_within_the_reopen_window_reopens(path, settings, channel, conversation):
    settings.HELPDESK = {**settings.HELPDESK, "REOPEN_WINDOW_DAYS": 7}
    ticket, sent = conversation
    _solve(ticket, days_ago=6)

    status, message = receive(channel, _answer_by(path, ticket, sent, body="It broke again"))

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    assert TimelineEvent.objects.filter(ticket=ticket, type=TimelineEvent.Type.REOPENED).count() == 1


# --- Out-of-office and other automatic replies ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "solved_days_ago"),
    [(Ticket.Status.SOLVED, 1), (Ticket.Status.SOLVED, 30), (Ticket.Status.PENDING, None)],
)
@pytest.mark.parametrize(
    "automatic_header",
    [{"Auto-Submitted": "auto-replied"}, {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}],
)
def test_an_out_of_office_reply_is_recorded_but_changes_nothing(
    state, solved_days_ago, automatic_header, settings, channel, conversation, django_capture_on_commit_callbacks
):
    settings.HELPDESK = {**settings.HELPDESK, "REOPEN_WINDOW_DAYS": 7}
    ticket, sent = conversation
    if solved_days_ago is None:
        Ticket.objects.filter(pk=ticket.pk).update(status=state)
    else:
        _solve(ticket, days_ago=solved_days_ago)
    before = Ticket.objects.get(pk=ticket.pk)
    events_before = list(TimelineEvent.objects.filter(ticket=ticket).values_list("pk", flat=True))
    raw = rfc822(
        in_reply_to=sent["Message-ID"],
        subject=f"Automatic reply: {sent['Subject']}",
        body="I am out of the office until Monday.",
        headers=automatic_header,
    )

    with django_capture_on_commit_callbacks() as callbacks:
        status, message = receive(channel, raw)

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.metadata["is_automatic"] is True
    after = Ticket.objects.get(pk=ticket.pk)
    assert (after.status, after.solved_at, after.last_customer_message_at, after.last_message_at, after.version) == (
        before.status,
        before.solved_at,
        before.last_customer_message_at,
        before.last_message_at,
        before.version,
    )
    assert Ticket.objects.count() == 1
    # No routing, nothing else queued: only the live push that shows it to agents viewing the ticket (and to the
    # customer's chat visitors, of whom there are none here)
    assert [getattr(callback, "func", callback) for callback in callbacks] == [
        realtime.publish._send_from_sync,
        realtime.publish._audiences_publish,
    ]
    assert list(TimelineEvent.objects.filter(ticket=ticket).values_list("pk", flat=True)) == events_before


def test_an_automatic_message_that_threads_to_nothing_starts_a_ticket(channel):
    status, message = receive(
        channel, rfc822(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}, body="Away")
    )

    assert status == "ingested"
    assert message.metadata["is_automatic"] is True


# --- Participants ---------------------------------------------------------------------------------------------


def test_sender_to_and_cc_are_participants_but_our_addresses_are_not(channel, conversation):
    ticket, sent = conversation
    ChannelFactory(kind=Channel.Kind.EMAIL, address="sales@desk.example")

    receive(
        channel,
        rfc822(
            in_reply_to=sent["Message-ID"],
            # help@acme.example forwards to our mailbox: the delivery header says it was ours.
            to=f"help@acme.example, {DESK}, Carol <Carol@Example.com>",
            cc=f"{parseaddr(sent['Reply-To'])[1]}, sales@desk.example, sales+x@desk.example, {BOB}",
            headers={"X-Original-To": "help@acme.example"},
        ),
    )

    participants = dict(TicketParticipant.objects.filter(ticket=ticket).values_list("email", "role"))
    assert participants == {ANN: "customer", BOB: "cc", "carol@example.com": "to"}


def test_the_same_reply_twice_is_one_message(channel, conversation):
    ticket, sent = conversation
    raw = rfc822(in_reply_to=sent["Message-ID"], message_id="<ann-again@mail.example.com>")

    first, _ = receive(channel, raw)
    second, again = receive(channel, raw)

    assert (first, second) == ("threaded", "duplicate")
    assert again.ticket_id == ticket.pk
    assert ticket.messages.filter(provider_id="<ann-again@mail.example.com>").count() == 1


def test_threading_costs_the_same_queries_however_many_references_a_reply_carries(channel, conversation):
    ticket, sent = conversation
    unknown = [f"<old-{n}@mail.example.com>" for n in range(30)]

    def queries_for(references: list[str]) -> int:
        raw = rfc822(in_reply_to=sent["Message-ID"], references=" ".join([*references, sent["Message-ID"]]))
        with CaptureQueriesContext(connection) as captured:
            status, message = receive(channel, raw)
        assert (status, message.ticket_id) == ("threaded", ticket.pk)
        return len(captured.captured_queries)

    assert queries_for(unknown) == queries_for(unknown[:1])


def test_a_reply_to_a_message_split_onto_its_own_ticket_stays_on_the_senders_own_ticket(channel, conversation):
    """Eve wrote with only "[#id]" in the subject, so her mail opened her own ticket. When Ann answers Eve's mail,
    In-Reply-To names Eve's ticket, but Ann's References also name her own: Ann's conversation wins, so one split
    does not drag the rest of the thread after it."""
    ticket, _ = conversation
    eve_id = "<eve-token-only@elsewhere.example>"
    _, eves = receive(channel, rfc822(sender=EVE, subject=f"Re: Refund [#{ticket.pk}]", message_id=eve_id))
    assert eves.ticket_id != ticket.pk

    status, message = receive(
        channel, rfc822(subject=f"Re: Refund [#{ticket.pk}]", in_reply_to=eve_id, references=f"{FIRST_ID} {eve_id}")
    )

    assert status == "threaded"
    assert message.ticket_id == ticket.pk
    assert message.metadata["threaded_by"] == "in_reply_to"
