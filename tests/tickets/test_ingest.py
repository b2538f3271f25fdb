"""message_ingest: one message per provider id, the right customer, and the right ticket across channels."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import Channel
from channels_app.types import InboundAttachment, InboundIdentity, InboundMessage
from customers.models import Customer, CustomerIdentity
from customers.services import customer_upsert
from customers.types import IdentityInput
from tests.factories import (
    ChannelFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
)
from tickets.errors import IngestRejected
from tickets.models import Message, Ticket
from tickets.services.ingest import message_ingest
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

ANN_EMAIL = "ann@example.com"
ANN_PHONE = "+14155550100"


def email(value: str = ANN_EMAIL) -> InboundIdentity:
    return InboundIdentity(kind="email", value=value)


def phone(value: str = ANN_PHONE) -> InboundIdentity:
    return InboundIdentity(kind="phone", value=value)


def inbound(provider_id: str, *, sender: InboundIdentity | None = None, text: str = "Hello", **fields):
    return InboundMessage(provider_id=provider_id, sender=sender or email(), text=text, **fields)


@pytest.fixture
def email_channel() -> Channel:
    # As channel_create makes them: email threads by headers, not by "the customer's open ticket".
    return ChannelFactory(kind=Channel.Kind.EMAIL, address="support@desk.example", continue_open_ticket=False)


@pytest.fixture
def sms_channel() -> Channel:
    return ChannelFactory(kind=Channel.Kind.SMS, address="+14155559999", continue_open_ticket=True)


@pytest.fixture
def ann() -> Customer:
    """A customer the company's systems told us about: one person with an email and a phone."""
    customer, _ = customer_upsert(
        identities=[
            IdentityInput(kind="email", value=ANN_EMAIL, is_verified=True),
            IdentityInput(kind="phone", value=ANN_PHONE, is_verified=True),
        ],
        profile={"name": "Ann Lee"},
    )
    return customer


def timeline(ticket: Ticket) -> list[tuple[str, str, dict]]:
    return [
        (event.type, event.actor_kind, event.params)
        for event in TimelineEvent.objects.filter(ticket=ticket).order_by("id")
    ]


# --- Idempotency ----------------------------------------------------------------------------------------------


def test_the_same_inbound_message_twice_is_stored_once(email_channel, django_capture_on_commit_callbacks):
    message = inbound("<m1@mail.example>", subject="Refund", text="Please refund order A-1.")
    with django_capture_on_commit_callbacks() as first_callbacks:
        first = message_ingest(channel=email_channel, inbound=message)

    with django_capture_on_commit_callbacks() as second_callbacks:
        second = message_ingest(channel=email_channel, inbound=message)

    assert (first.is_new_message, first.is_new_ticket) == (True, True)
    assert (second.is_new_message, second.is_new_ticket) == (False, False)
    assert second.message.pk == first.message.pk
    assert second.ticket.pk == first.ticket.pk
    # The push to the agents first, then to chat visitors, then the routing of the new ticket (its task is sent to
    # the broker: the agents do not wait for that); nothing pushed or routed twice.
    assert len(first_callbacks) == 3
    assert [callback.func.__name__ for callback in first_callbacks[:2]] == ["_send_from_sync", "_audiences_publish"]
    assert second_callbacks == []
    assert Message.objects.count() == 1
    assert Ticket.objects.count() == 1
    assert Customer.objects.count() == 1
    assert TimelineEvent.objects.filter(type=TimelineEvent.Type.TICKET_CREATED).count() == 1


def test_a_redelivered_message_changes_nothing_even_where_a_new_one_would(sms_channel, ann):
    """The duplicate is found by the insert: whatever it had started first (a new ticket, as the first one is solved,
    with its timeline event; the customer's visit) is undone."""
    first = message_ingest(channel=sms_channel, inbound=inbound("SM1", sender=phone()))
    solved_at = timezone.now() - timedelta(days=1)
    Ticket.objects.filter(pk=first.ticket.pk).update(status=Ticket.Status.SOLVED, solved_at=solved_at)
    ann.refresh_from_db()
    ticket_before = Ticket.objects.values("status", "solved_at", "version", "last_message_at").get()
    events_before = timeline(first.ticket)

    again = message_ingest(channel=sms_channel, inbound=inbound("SM1", sender=phone()))

    assert (again.is_new_message, again.is_new_ticket, again.message.pk) == (False, False, first.message.pk)
    assert Ticket.objects.values("status", "solved_at", "version", "last_message_at").get() == ticket_before
    assert ticket_before["status"] == Ticket.Status.SOLVED
    assert timeline(first.ticket) == events_before
    assert Customer.objects.values_list("last_seen_at", flat=True).get(pk=ann.pk) == ann.last_seen_at
    assert Message.objects.count() == 1


def test_the_same_provider_id_on_another_channel_is_another_message(email_channel):
    other_mailbox = ChannelFactory(kind=Channel.Kind.EMAIL, address="sales@desk.example", continue_open_ticket=False)

    first = message_ingest(channel=email_channel, inbound=inbound("42"))
    second = message_ingest(channel=other_mailbox, inbound=inbound("42"))

    assert second.is_new_message is True
    assert second.message.pk != first.message.pk
    assert Message.objects.count() == 2


# --- Routing --------------------------------------------------------------------------------------------------


def test_a_new_ticket_is_opened_with_its_channels_team_and_pushed_to_that_team(ann, django_capture_on_commit_callbacks):
    team = TeamFactory(name="Billing")
    channel = ChannelFactory(kind=Channel.Kind.SMS, default_team=team, continue_open_ticket=True)

    with django_capture_on_commit_callbacks() as callbacks:
        started = message_ingest(channel=channel, inbound=inbound("SM1", sender=phone()))
        # routed in the transaction that opens it, before anything is pushed
        assert Ticket.objects.values_list("team_id", flat=True).get(pk=started.ticket.pk) == team.pk
    with django_capture_on_commit_callbacks() as continuation_callbacks:
        message_ingest(channel=channel, inbound=inbound("SM2", sender=phone()))

    ticket = Ticket.objects.get(pk=started.ticket.pk)
    assert ticket.team_id == team.pk
    assert timeline(ticket) == [
        ("ticket_created", "customer", {"channel_id": channel.pk, "channel_kind": "sms"}),
        (
            "team_changed",
            "system",
            {"from": None, "to": team.pk, "rule": "channel_default_team", "actor_label": "routing"},
        ),
    ]
    # The agents' push of its first message is for Billing's agents (and those who see every ticket) only
    [agents_push] = callbacks[0].keywords["publications"]
    assert agents_push.audience == {"team_id": team.pk, "assignee_id": None}
    # then the visitors', then the routing task for later rules (it finds the ticket routed and changes nothing)
    assert [callback.func.__name__ for callback in callbacks[:2]] == ["_send_from_sync", "_audiences_publish"]
    assert len(callbacks) == 3
    # A continued ticket is not routed again: its message is only pushed, to the agents, then to chat visitors.
    assert [callback.func.__name__ for callback in continuation_callbacks] == ["_send_from_sync", "_audiences_publish"]


# --- Cross-channel continuation -------------------------------------------------------------------------------


def test_sms_from_the_customers_phone_continues_the_ticket_started_by_email(ann, email_channel, sms_channel):
    started = message_ingest(
        channel=email_channel,
        inbound=inbound("<m1@mail.example>", sender=email("Ann@Example.com"), subject="Refund", text="Refund A-1"),
    )

    texted = message_ingest(channel=sms_channel, inbound=inbound("SM1", sender=phone(), text="Any news?"))

    assert started.is_new_ticket is True
    assert texted.is_new_ticket is False
    assert texted.ticket.pk == started.ticket.pk
    assert texted.message.customer_id == ann.pk
    assert list(started.ticket.messages.order_by("id").values_list("channel__kind", "text")) == [
        ("email", "Refund A-1"),
        ("sms", "Any news?"),
    ]
    assert Ticket.objects.count() == 1
    assert Customer.objects.count() == 1


@pytest.mark.parametrize(
    ("written", "channel_settings", "stored"),
    [
        ("(415) 555-0100", {}, "+14155550100"),  # DEFAULT_PHONE_REGION is US
        ("415.555.0100", {"phone_region": "US"}, "+14155550100"),
        ("0412 345 678", {"phone_region": "AU"}, "+61412345678"),
    ],
)
def test_a_national_format_number_matches_the_e164_identity(written, channel_settings, stored, email_channel):
    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="email", value=ANN_EMAIL)
    IdentityFactory(customer=customer, kind="phone", value=stored)
    started = message_ingest(channel=email_channel, inbound=inbound("<m1@mail.example>"))
    sms_channel = ChannelFactory(kind=Channel.Kind.SMS, settings=channel_settings, continue_open_ticket=True)

    texted = message_ingest(channel=sms_channel, inbound=inbound("SM1", sender=phone(written)))

    assert texted.ticket.pk == started.ticket.pk
    assert texted.message.customer_id == customer.pk
    assert texted.message.identity.value == stored
    assert Customer.objects.count() == 1
    assert CustomerIdentity.objects.filter(kind="phone").count() == 1


@pytest.mark.parametrize(("continue_open_ticket", "tickets"), [(False, 2), (True, 1)])
def test_a_second_email_follows_the_open_ticket_only_if_the_channel_says_so(continue_open_ticket, tickets, ann):
    mailbox = ChannelFactory(kind=Channel.Kind.EMAIL, continue_open_ticket=continue_open_ticket)
    first = message_ingest(channel=mailbox, inbound=inbound("<m1@mail.example>", subject="Refund"))

    second = message_ingest(channel=mailbox, inbound=inbound("<m2@mail.example>", subject="New address"))

    assert second.is_new_ticket is (not continue_open_ticket)
    assert (second.ticket.pk == first.ticket.pk) is continue_open_ticket
    assert Ticket.objects.filter(customer=ann).count() == tickets
    assert first.ticket.messages.count() == 3 - tickets


@pytest.mark.parametrize("status", [Ticket.Status.SOLVED, Ticket.Status.CLOSED])
def test_a_solved_or_closed_ticket_is_not_continued_without_a_reference(status, ann, sms_channel):
    old = TicketFactory(customer=ann, status=status, solved_at=timezone.now() - timedelta(hours=1))

    result = message_ingest(channel=sms_channel, inbound=inbound("SM1", sender=phone()))

    assert result.is_new_ticket is True
    assert result.ticket.pk != old.pk
    assert result.ticket.follow_up_of is None
    old.refresh_from_db()
    assert old.status == status
    assert old.messages.count() == 0


@pytest.mark.parametrize("status", [Ticket.Status.PENDING, Ticket.Status.ON_HOLD])
def test_a_customer_message_on_a_waiting_ticket_sets_it_open(status, ann, sms_channel):
    waiting = TicketFactory(customer=ann, status=status)

    result = message_ingest(channel=sms_channel, inbound=inbound("SM1", sender=phone()))

    assert result.ticket.pk == waiting.pk
    waiting.refresh_from_db()
    assert waiting.status == Ticket.Status.OPEN
    assert waiting.last_customer_message_at is not None
    assert timeline(waiting) == [("status_changed", "customer", {"from": status, "to": "open"})]


# --- References: ticket_id and in_reply_to --------------------------------------------------------------------


def test_an_explicit_ticket_id_of_the_sender_continues_that_ticket(ann, sms_channel):
    older = TicketFactory(customer=ann, last_message_at=timezone.now() - timedelta(days=2))
    TicketFactory(customer=ann, last_message_at=timezone.now())  # the one continue_open_ticket would pick

    result = message_ingest(channel=sms_channel, inbound=inbound("SM1", sender=phone(), ticket_id=older.pk))

    assert result.ticket.pk == older.pk
    assert result.is_new_ticket is False


@pytest.mark.parametrize("whose", ["another customer's", "nobody's"])
def test_an_explicit_ticket_id_not_of_the_sender_is_rejected_with_the_same_reason(whose, ann, sms_channel):
    if whose == "nobody's":
        ticket_id = 999_999
    else:
        ticket_id = TicketFactory().pk
    tickets_before = Ticket.objects.count()

    with pytest.raises(IngestRejected) as rejected:
        message_ingest(channel=sms_channel, inbound=inbound("SM1", sender=phone(), ticket_id=ticket_id))

    assert rejected.value.detail == f"ticket {ticket_id} is not a ticket of this sender"
    assert Message.objects.count() == 0
    assert Ticket.objects.count() == tickets_before


def test_in_reply_to_a_message_of_the_customer_continues_its_ticket(ann, email_channel):
    older = TicketFactory(customer=ann, last_message_at=timezone.now() - timedelta(days=2))
    TicketFactory(customer=ann, last_message_at=timezone.now())
    MessageFactory(ticket=older, channel=email_channel, provider_id="<m1@mail.example>")

    result = message_ingest(
        channel=email_channel,
        inbound=inbound("<m2@mail.example>", in_reply_to=("<unknown@mail.example>", "<m1@mail.example>")),
    )

    assert result.ticket.pk == older.pk
    assert result.is_new_ticket is False


@pytest.mark.parametrize("continue_open_ticket", [False, True])
def test_in_reply_to_another_customers_message_threads_there_as_the_sender(continue_open_ticket, ann):
    """Only someone who received that message knows its id (a colleague in Cc): the reply joins that ticket, and is
    still Ann's own message, not the ticket customer's. Subject references, which anyone can type, are stricter
    (tests/tickets/test_email_threading.py)."""
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, continue_open_ticket=continue_open_ticket)
    colleagues_ticket = TicketFactory()
    MessageFactory(ticket=colleagues_ticket, channel=channel, provider_id="<theirs@mail.example>")
    TicketFactory(customer=ann)

    result = message_ingest(
        channel=channel, inbound=inbound("<m2@mail.example>", in_reply_to=("<theirs@mail.example>",))
    )

    assert result.ticket.pk == colleagues_ticket.pk
    assert result.is_new_ticket is False
    assert result.message.customer_id == ann.pk != colleagues_ticket.customer_id
    assert result.message.metadata["sender_is_participant"] is False


# --- Reopen window --------------------------------------------------------------------------------------------


def reference(kind: str, ticket: Ticket, channel: Channel) -> dict:
    if kind == "ticket_id":
        return {"ticket_id": ticket.pk}
    MessageFactory(ticket=ticket, channel=channel, provider_id="<earlier@mail.example>")
    return {"in_reply_to": ("<earlier@mail.example>",)}


@pytest.mark.parametrize("reference_kind", ["ticket_id", "in_reply_to"])
def test_a_reply_within_the_reopen_window_reopens_the_solved_ticket(reference_kind, settings, ann, email_channel):
    settings.HELPDESK = {**settings.HELPDESK, "REOPEN_WINDOW_DAYS": 3}
    solved = TicketFactory(customer=ann, status=Ticket.Status.SOLVED, solved_at=timezone.now() - timedelta(days=2))

    result = message_ingest(
        channel=email_channel,
        inbound=inbound("<m2@mail.example>", **reference(reference_kind, solved, email_channel)),
    )

    assert result.ticket.pk == solved.pk
    assert result.is_new_ticket is False
    solved.refresh_from_db()
    assert solved.status == Ticket.Status.OPEN
    assert solved.solved_at is None
    assert timeline(solved) == [("reopened", "customer", {"from": "solved", "to": "open"})]
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize("reference_kind", ["ticket_id", "in_reply_to"])
def test_a_reply_after_the_reopen_window_starts_a_linked_follow_up(reference_kind, settings, ann, email_channel):
    settings.HELPDESK = {**settings.HELPDESK, "REOPEN_WINDOW_DAYS": 3}
    solved = TicketFactory(customer=ann, status=Ticket.Status.SOLVED, solved_at=timezone.now() - timedelta(days=4))

    result = message_ingest(
        channel=email_channel,
        inbound=inbound("<m2@mail.example>", **reference(reference_kind, solved, email_channel)),
    )

    follow_up = result.ticket
    assert result.is_new_ticket is True
    assert follow_up.pk != solved.pk
    assert follow_up.follow_up_of_id == solved.pk
    solved.refresh_from_db()
    assert solved.status == Ticket.Status.SOLVED
    assert timeline(solved) == [("follow_up_created", "customer", {"follow_up_ticket_id": follow_up.pk})]
    assert timeline(follow_up) == [
        (
            "ticket_created",
            "customer",
            {"channel_id": email_channel.pk, "channel_kind": "email", "follow_up_of": solved.pk},
        )
    ]


def test_a_reply_to_a_closed_ticket_always_starts_a_follow_up(ann, email_channel):
    closed = TicketFactory(customer=ann, status=Ticket.Status.CLOSED, solved_at=timezone.now() - timedelta(minutes=5))

    result = message_ingest(channel=email_channel, inbound=inbound("<m2@mail.example>", ticket_id=closed.pk))

    assert result.is_new_ticket is True
    assert result.ticket.follow_up_of_id == closed.pk
    closed.refresh_from_db()
    assert closed.status == Ticket.Status.CLOSED
    assert [event[0] for event in timeline(closed)] == ["follow_up_created"]


# --- Extra identities -----------------------------------------------------------------------------------------


def test_an_extra_identity_owned_by_someone_else_is_not_attached_and_is_noted(email_channel):
    bob = CustomerFactory(name="Bob")
    IdentityFactory(customer=bob, kind="phone", value=ANN_PHONE)

    result = message_ingest(
        channel=email_channel, inbound=inbound("<m1@mail.example>", extra_identities=(phone("(415) 555-0100"),))
    )

    ann = result.message.customer
    assert ann.pk != bob.pk
    assert list(ann.identities.values_list("kind", "value")) == [("email", ANN_EMAIL)]
    assert CustomerIdentity.objects.get(kind="phone").customer_id == bob.pk
    assert result.message.metadata == {"identities_not_attached": ["phone"]}
    assert Customer.objects.count() == 2
    assert Customer.objects.filter(merged_into__isnull=False).count() == 0


def test_a_free_extra_identity_is_attached_to_the_sender(email_channel):
    result = message_ingest(
        channel=email_channel,
        inbound=inbound("<m1@mail.example>", extra_identities=(InboundIdentity("phone", "(415) 555-0100", True),)),
    )

    customer = result.message.customer
    assert sorted(customer.identities.values_list("kind", "value", "is_verified")) == [
        ("email", ANN_EMAIL, False),
        ("phone", ANN_PHONE, True),
    ]
    assert result.message.metadata == {}


def test_an_unusable_sender_is_rejected_and_nothing_is_stored(email_channel):
    with pytest.raises(IngestRejected) as rejected:
        message_ingest(channel=email_channel, inbound=inbound("<m1@mail.example>", sender=email("not-an-address")))

    assert rejected.value.detail == "sender email is not usable: not a valid email address"
    assert Customer.objects.count() == 0
    assert Message.objects.count() == 0
    assert Ticket.objects.count() == 0


# --- HTML -----------------------------------------------------------------------------------------------------


def test_html_is_sanitised_and_gives_the_text_when_there_is_none(email_channel):
    html = (
        "<p>Hello <b>team</b></p><script>steal(document.cookie)</script>"
        '<img src="https://cdn.example/x.png" onerror="alert(1)">'
        '<p><a href="javascript:alert(1)">track</a> <a href="https://shop.example/o/1">order</a></p>'
    )

    result = message_ingest(channel=email_channel, inbound=inbound("<m1@mail.example>", text="", html=html))

    stored = Message.objects.get(pk=result.message.pk)
    assert stored.html == (
        "<p>Hello <b>team</b></p>"
        '<img data-remote-src="https://cdn.example/x.png">'
        '<p><a target="_blank" rel="noopener noreferrer nofollow">track</a> '
        '<a href="https://shop.example/o/1" target="_blank" rel="noopener noreferrer nofollow">order</a></p>'
    )
    assert "script" not in stored.html
    assert "onerror" not in stored.html
    assert "javascript:" not in stored.html
    assert stored.text == "Hello team\ntrack order"


def test_given_text_is_kept_as_it_is_next_to_html(email_channel):
    result = message_ingest(
        channel=email_channel, inbound=inbound("<m1@mail.example>", text="Plain version", html="<p>Rich version</p>")
    )

    assert (result.message.text, result.message.html) == ("Plain version", "<p>Rich version</p>")


@pytest.mark.parametrize("text", ["", "   \n  "])
def test_a_message_with_only_html_gets_its_text_and_subject_from_the_html(text, email_channel):
    result = message_ingest(
        channel=email_channel,
        inbound=inbound("<m1@mail.example>", text=text, html="<p>My parcel is <b>late</b></p><p>Order A-1</p>"),
    )

    assert result.message.text == "My parcel is late\nOrder A-1"
    assert result.ticket.subject == "My parcel is late"


def test_an_attachment_name_with_a_path_is_shown_without_it(email_channel):
    attachment = InboundAttachment(filename="../../etc/passwd", content_type="text/plain", content=b"x")

    result = message_ingest(channel=email_channel, inbound=inbound("<m1@mail.example>", attachments=(attachment,)))

    stored = result.message.attachments.get()
    assert stored.filename == "passwd"
    assert ".." not in stored.file.name


def test_several_attachments_are_stored_in_one_insert_and_inline_images_point_at_theirs(
    email_channel, django_assert_num_queries
):
    attachments = (
        InboundAttachment(filename="invoice.pdf", content_type="application/pdf", content=b"%PDF-1.4"),
        InboundAttachment(filename="a.png", content_type="image/png", content=b"\x89PNG a", content_id="a@mail"),
        InboundAttachment(filename="b.png", content_type="image/png", content=b"\x89PNG b", content_id="b@mail"),
    )
    html = '<p>Look</p><img src="cid:b@mail" alt="b"><img src="cid:a@mail" alt="a">'
    message_ingest(channel=email_channel, inbound=inbound("<m0@mail.example>"))  # Ann exists, her ticket too

    # Ingestion's own statements: the push to the agents (its query for chat visitors) is left out.
    with django_assert_num_queries(10) as queries:
        result = message_ingest(
            channel=email_channel,
            inbound=inbound("<m1@mail.example>", html=html, attachments=attachments),
            publish=False,
        )

    assert sum('INSERT INTO "tickets_attachment"' in query["sql"] for query in queries.captured_queries) == 1
    stored = {attachment.filename: attachment for attachment in result.message.attachments.all()}
    assert [(a.content_type, a.size, a.content_id, a.file.read()) for a in stored.values()] == [
        (item.content_type, len(item.content), item.content_id, item.content) for item in attachments
    ]
    message = Message.objects.get(pk=result.message.pk)
    assert message.html == (
        f'<p>Look</p><img src="/api/v1/attachments/{stored["b.png"].pk}" alt="b">'
        f'<img src="/api/v1/attachments/{stored["a.png"].pk}" alt="a">'
    )
