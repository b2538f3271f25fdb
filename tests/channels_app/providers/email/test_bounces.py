"""Bounces: recognised over the real-world corpus, and acted on: a bounce fails the delivery it refers to, shows on
that ticket's timeline, and opens no ticket. The outbound mail goes through a real SMTP server (aiosmtpd)."""

import email.policy
import re
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from django.conf import settings

from channels_app.models import Delivery, InboundEvent
from channels_app.providers.email.bounces import bounce_detect
from channels_app.providers.email.parsing import parse_email
from channels_app.services.bounces import email_bounce_record
from channels_app.services.mailbox_import import email_import
from channels_app.threading_refs import our_message_id
from tests.channels_app.providers.email.test_outbound import (
    CHANNEL_ADDRESS,
    mailbox,
    queued_reply,
)
from tickets.models import Message, MessageAlias, Ticket
from timeline.models import TimelineEvent

CORPUS = settings.BASE_DIR / "tests" / "fixtures" / "email_corpus"
BOUNCE_FILES = sorted((CORPUS / "bounces").iterdir())
REPLY_FILES = sorted(path for path in (CORPUS / "replies").iterdir() if path.suffix == ".eml")
CPYTHON_FILES = sorted((CORPUS / "cpython").iterdir())

# The two files of flufl.bounce's test data that are not bounces, and are rightly not recognised as bounces.
NOT_BOUNCES = {
    "groupwise_03.txt": "a person's Outlook reply (RE: Vuille - (PO28169) - IND); flufl.bounce keeps it as a "
    "sample that must not be taken for a GroupWise bounce",
    "qmail_08.txt": "an autoresponder's 'Auto reply' (Precedence: auto_reply), flagged automatic instead",
}
# CPython's test messages that are bounces: three real DSNs, a multipart/report declared delivery-status, and a
# "Mail Delivery Subsystem" returning a message.
CPYTHON_BOUNCES = {
    "msg_05.txt": "multipart/report; report-type=delivery-status (body 'Yadda yadda')",
    "msg_16.txt": "a DSN from a mail gateway, failed recipient jangel1@cougar.noc.ucla.edu",
    "msg_25.txt": "a Sendmail DSN (Too many hops), its boundary cut short",
    "msg_42.txt": "From: Mail Delivery Subsystem, returning a message/rfc822",
    "msg_43.txt": "an amavis DSN (BANNED content), four failed recipients",
}
DELAY_WARNINGS = {
    "dsn_05.txt",
    "dsn_06.txt",
    "dsn_07.txt",
    "dsn_08.txt",
    "dsn_17.txt",
    "simple_03.txt",
    "simple_21.txt",
    "simple_22.txt",
    "simple_28.txt",
    "simple_35.txt",
    "simple_40.txt",
}


def parsed(path) -> email.message.EmailMessage:
    return BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())


def detected(name: str):
    return bounce_detect(parsed(CORPUS / "bounces" / name))


# --- Recognition over the corpus ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BOUNCE_FILES, ids=lambda path: path.name)
def test_each_corpus_bounce_is_recognised(path):
    bounce = bounce_detect(parsed(path))

    if path.name in NOT_BOUNCES:
        assert bounce is None, NOT_BOUNCES[path.name]
    else:
        assert bounce is not None
        assert bounce.kind in ("dsn", "notice")


def test_at_least_100_of_the_115_corpus_bounces_are_recognised():
    recognised = [path.name for path in BOUNCE_FILES if bounce_detect(parsed(path)) is not None]

    assert len(BOUNCE_FILES) == 115
    assert len(recognised) >= 100
    # All but the two that are not bounces at all.
    assert sorted({path.name for path in BOUNCE_FILES} - set(recognised)) == sorted(NOT_BOUNCES)


@pytest.mark.parametrize("path", REPLY_FILES, ids=lambda path: path.name)
def test_no_reply_from_a_mail_client_is_taken_for_a_bounce(path):
    assert bounce_detect(parsed(path)) is None


def test_only_the_cpython_messages_that_are_bounces_are_recognised():
    recognised = {path.name for path in CPYTHON_FILES if bounce_detect(parsed(path)) is not None}

    assert recognised == set(CPYTHON_BOUNCES)


@pytest.mark.parametrize("name", sorted(DELAY_WARNINGS))
def test_a_delay_warning_is_a_bounce_that_is_not_a_failure(name):
    bounce = detected(name)

    assert bounce is not None
    assert bounce.is_permanent is False


def test_every_other_corpus_bounce_is_a_permanent_failure():
    permanent = {path.name for path in BOUNCE_FILES if (bounce := bounce_detect(parsed(path))) and bounce.is_permanent}

    assert permanent == {path.name for path in BOUNCE_FILES} - DELAY_WARNINGS - set(NOT_BOUNCES)


@pytest.mark.parametrize(
    "name, kind, addresses, status",
    [
        ("dsn_10.txt", "dsn", ["anne.person@dom.ain"], "5.0.0"),
        ("dsn_11.txt", "dsn", ["joem@example.com"], "5.1.1"),
        ("dsn_02.txt", "dsn", ["zzzzz@example.uk"], "4.4.7"),  # Action: failed after the message expired
        ("postfix_01.txt", "notice", ["xxxxx@local.ie"], "5.1.1"),
        ("qmail_06.txt", "notice", ["ntl@xxx.com"], ""),
        ("exim_01.txt", "notice", ["userx@its.example.nl"], "5.1.1"),
        ("yahoo_04.txt", "notice", ["userx@example.es", "usery@example.uk"], ""),
        ("smtp32_04.txt", "notice", ["after_another@example.net", "one_bad_address@example.net"], "5.3.0"),
        ("netscape_01.txt", "dsn", ["aaaaa@corel.com", "bbbbb@corel.com"], ""),
        ("sina_01.txt", "notice", ["userx@sina.com", "usery@sina.com"], ""),
        ("microsoft_02.txt", "notice", ["userx@example.COM"], ""),
        ("simple_39.txt", "notice", ["userx@example.ru"], ""),
    ],
)
def test_failed_recipients_and_status_are_read(name, kind, addresses, status):
    bounce = detected(name)

    assert bounce.kind == kind
    assert [recipient.address for recipient in bounce.recipients] == addresses
    assert bounce.status == status
    assert bounce.is_permanent is True


def test_a_dsn_gives_action_status_and_diagnostic_per_recipient():
    bounce = detected("dsn_16.txt")

    (recipient,) = bounce.recipients
    assert (recipient.address, recipient.action, recipient.status, recipient.is_permanent) == (
        "userx@example.com",
        "failed",
        "5.0.0",
        True,
    )
    assert recipient.diagnostic.startswith("X-Postfix; host mx.pastors.com[70.183.18.160] said: 550")
    assert bounce.diagnostic == recipient.diagnostic


@pytest.mark.parametrize(
    "name, message_id",
    [
        ("dsn_01.txt", "<F1218V8zDv60gxapzha000001ae@hotmail.com>"),  # the embedded message/rfc822
        ("dsn_05.txt", "<pfchbtkf3j0p7prf0sp45vi21fro3bs7ad@4ax.com>"),  # message/rfc822-headers
        ("dsn_10.txt", "<200210211625.12753.b.a.dude@example.com>"),
        ("yahoo_13.txt", "<130907fb-848c-d154-8e59-ed1e08319fcf@yahoo.com>"),
    ],
)
def test_the_original_message_id_is_read_from_the_returned_copy(name, message_id):
    assert detected(name).original_message_ids[0] == message_id


def test_message_ids_quoted_in_a_notice_and_the_bounces_own_references_are_read():
    raw = (
        (CORPUS / "bounces" / "qmail_01.txt")
        .read_bytes()
        .replace(
            b"Message removed",
            b"Return-Path: <support@desk.example>\nMessage-ID: <quoted@desk.example>\nSubject: Re: Refund\n\nHello",
        )
    )
    raw = raw.replace(b"Subject: failure notice", b"Subject: failure notice\nReferences: <referenced@desk.example>")

    bounce = bounce_detect(BytesParser(policy=email.policy.default).parsebytes(raw))

    assert bounce.original_message_ids == ("<quoted@desk.example>", "<referenced@desk.example>")


def customer_mail(**headers) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Ann Lee <ann@example.com>"
    message["To"] = CHANNEL_ADDRESS
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message


def test_a_customer_writing_about_an_undelivered_parcel_is_not_a_bounce():
    message = customer_mail(Subject="Undelivered: my parcel could not be delivered")
    message.set_content("My parcel could not be delivered to ann@example.com, the courier says user unknown.")

    assert bounce_detect(message) is None


def test_a_bounce_the_customer_forwards_to_us_is_the_customers_message():
    message = customer_mail(Subject="Fwd: Undelivered Mail Returned to Sender")
    message.set_content(
        "Why does this happen?\n\n---------- Forwarded message ----------\nFrom: MAILER-DAEMON@mx.example.com\n\n"
        "This is the Postfix program at host mx.example.com.\n\nI'm sorry to have to inform you that your message "
        "could not be delivered to one or more recipients."
    )

    assert bounce_detect(message) is None


def test_a_broken_bounce_does_not_raise():
    raw = (
        b"From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered Mail\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\r\n\r\n'
        b"--x\r\nContent-Type: text/plain; charset=bogus-8\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\xff\xfe\r\n"
        b"--x\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: \xff\r\nAction: \r\n\r\n--x"
    )

    bounce = bounce_detect(BytesParser(policy=email.policy.default).parsebytes(raw))

    assert bounce is not None and bounce.kind == "dsn"


def test_parse_email_puts_the_bounce_in_the_metadata():
    inbound = parse_email((CORPUS / "bounces" / "dsn_10.txt").read_bytes(), channel=None)

    assert inbound.metadata["is_bounce"] is True
    assert inbound.metadata["is_automatic"] is True
    assert inbound.metadata["automatic_reason"] == "bounce"
    assert inbound.metadata["bounce"] == {
        "kind": "dsn",
        "is_permanent": True,
        "evidence": "delivery status report",
        "is_certain": True,
        "status": "5.0.0",
        "diagnostic": inbound.metadata["bounce"]["recipients"][0]["diagnostic"],
        "recipients": [
            {
                "address": "anne.person@dom.ain",
                "status": "5.0.0",
                "action": "failed",
                "diagnostic": inbound.metadata["bounce"]["recipients"][0]["diagnostic"],
                "is_permanent": True,
            }
        ],
        "original_message_ids": ["<200210211625.12753.b.a.dude@example.com>"],
    }
    assert "said: 550" in inbound.metadata["bounce"]["diagnostic"]


def test_an_ordinary_message_has_no_bounce():
    message = customer_mail(Subject="Refund")
    message.set_content("Where is my refund?")

    inbound = parse_email(message.as_bytes(), channel=None)

    assert inbound.metadata["bounce"] is None
    assert inbound.metadata["is_bounce"] is False


# --- Acting on a bounce: the real flow ------------------------------------------------------------------------------


def dsn_for(message_id: str, *, corpus_file: str = "dsn_10.txt", bounce_id: str = "<bounce-1@mx.example.com>"):
    """A corpus DSN whose returned copy is the message ``message_id`` names, under its own Message-ID."""
    raw = (CORPUS / "bounces" / corpus_file).read_bytes()
    raw = raw.replace(b"<200210211625.12753.b.a.dude@example.com>", message_id.encode())
    raw = raw.replace(b"<pfchbtkf3j0p7prf0sp45vi21fro3bs7ad@4ax.com>", message_id.encode())
    return re.sub(rb"(?mi)^Message-Id: <[^>]+>", b"Message-ID: " + bounce_id.encode(), raw, count=1)


@pytest.fixture
def sent_reply(smtp, db, django_capture_on_commit_callbacks):
    """An agent's reply, sent through the SMTP server; returns its delivery and the Message-ID that arrived."""
    with django_capture_on_commit_callbacks(execute=True):
        delivery = queued_reply(mailbox(smtp.port))
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    (received,) = smtp.received
    return delivery, received.message["Message-ID"]


def failure_events():
    return list(TimelineEvent.objects.filter(type=TimelineEvent.Type.DELIVERY_FAILED))


@pytest.mark.django_db
def test_a_bounce_for_our_reply_fails_its_delivery_and_opens_no_ticket(sent_reply, django_capture_on_commit_callbacks):
    # Given a reply that went out, and the Message-ID the customer's server received
    delivery, message_id = sent_reply
    assert message_id == our_message_id(message_id=delivery.message_id, domain="desk.example")
    tickets, messages = Ticket.objects.count(), Message.objects.count()

    # When the recipient's server returns it (a Postfix DSN), imported as any inbound mail
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        outcome = email_import(channel=delivery.channel, raw=dsn_for(message_id))

    # Then the delivery failed, with the bounce's status and diagnostic
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == ("failed", "bounced")
    assert delivery.error.startswith("5.0.0 <anne.person@dom.ain>: X-Postfix; host mx.dom.ain[192.168.1.100] said: 550")
    # And the ticket's timeline says so
    (event,) = failure_events()
    assert event.ticket_id == delivery.message.ticket_id
    assert event.actor_kind == "system"
    assert event.params["actor_label"] == "bounce"
    assert event.params["error_code"] == "bounced"
    assert event.params["delivery_id"] == delivery.pk
    assert event.params["previous_status"] == "sent"
    assert event.params["failed_recipients"] == ["anne.person@dom.ain"]
    # And no ticket, no message and nothing sent came of it; the event is processed with the reason
    assert (Ticket.objects.count(), Message.objects.count()) == (tickets, messages)
    assert callbacks == []
    stored = InboundEvent.objects.get(pk=outcome.event_id)
    assert (outcome.status, stored.status) == ("bounce", "processed")
    assert stored.reason == f"bounce: delivery of message {delivery.message_id} failed"
    assert event.params["bounce_event_id"] == stored.pk


@pytest.mark.django_db
def test_the_same_bounce_twice_changes_nothing_twice(sent_reply):
    delivery, message_id = sent_reply
    raw = dsn_for(message_id)
    email_import(channel=delivery.channel, raw=raw)

    again = email_import(channel=delivery.channel, raw=raw)
    # A second bounce for the same message (another Message-ID): the delivery has already failed
    other = email_import(channel=delivery.channel, raw=dsn_for(message_id, bounce_id="<bounce-2@mx.example.com>"))

    assert again.status == "duplicate"
    assert other.status == "bounce"
    assert other.reason == f"bounce for message {delivery.message_id}, whose delivery had already failed"
    assert len(failure_events()) == 1
    assert InboundEvent.objects.filter(channel=delivery.channel).count() == 2


@pytest.mark.django_db
def test_a_delay_warning_leaves_the_delivery_alone(sent_reply):
    delivery, message_id = sent_reply

    outcome = email_import(channel=delivery.channel, raw=dsn_for(message_id, corpus_file="dsn_05.txt"))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == ("sent", "")
    assert failure_events() == []
    assert outcome.status == "bounce"
    assert outcome.reason == f"delivery delay report for message {delivery.message_id}; delivery unchanged"


@pytest.mark.django_db
def test_a_bounce_like_mail_from_a_persons_address_that_returns_nothing_of_ours_is_taken_in(smtp):
    # Given a notice that reads like a bounce, from an ordinary address (corpus simple_20, a real one)
    channel = mailbox(smtp.port)
    raw = (CORPUS / "bounces" / "simple_20.txt").read_bytes()
    assert bounce_detect(BytesParser(policy=email.policy.default).parsebytes(raw)).evidence == "wording"

    outcome = email_import(channel=channel, raw=raw)

    # Then it matched nothing we sent, so it is not swallowed: it is a message on a ticket, flagged a bounce
    assert outcome.status == "ingested"
    message = Message.objects.get()
    assert (message.metadata["is_bounce"], message.metadata["is_automatic"]) == (True, True)
    assert InboundEvent.objects.get(pk=outcome.event_id).reason == (
        "bounce-like message that matches nothing we sent, taken in as a message"
    )


@pytest.mark.django_db
def test_a_bounce_for_a_message_we_did_not_send_is_kept_and_opens_nothing(smtp):
    channel = mailbox(smtp.port)

    raw = (CORPUS / "bounces" / "dsn_10.txt").read_bytes()

    outcome = email_import(channel=channel, raw=raw)

    assert outcome.status == "bounce"
    assert outcome.reason == "bounce for a message we did not send"
    assert Ticket.objects.count() == 0
    assert Message.objects.count() == 0
    assert bytes(InboundEvent.objects.get(pk=outcome.event_id).raw) == raw


@pytest.mark.django_db
def test_a_forged_message_id_of_ours_matches_nothing(sent_reply):
    delivery, message_id = sent_reply
    # Our id's shape and the message's number, without our signature
    forged = f"<hd.{delivery.message_id}.0123456789@desk.example>"
    assert forged != message_id

    outcome = email_import(channel=delivery.channel, raw=dsn_for(forged))

    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert outcome.reason == "bounce for a message we did not send"


@pytest.mark.django_db
def test_a_delivered_delivery_fails_when_a_bounce_comes_later(sent_reply):
    delivery, message_id = sent_reply
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.DELIVERED)

    email_import(channel=delivery.channel, raw=dsn_for(message_id))

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    (event,) = failure_events()
    assert event.params["previous_status"] == "delivered"


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["provider_id", "alias", "bare_alias"])
def test_a_bounce_quoting_an_id_a_provider_substituted_finds_the_message(smtp, how):
    # Given a reply whose provider (Amazon SES, say) sent it under an id of its own
    delivery = queued_reply(mailbox(smtp.port))
    ses_id = "010001812345abcd-0123abcd-4567-89ef-0123-456789abcdef-000000"
    substituted = f"<{ses_id}@email.amazonses.com>"
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENT)
    if how == "provider_id":
        Message.objects.filter(pk=delivery.message_id).update(provider_id=substituted)
    else:
        MessageAlias.objects.create(message=delivery.message, value=substituted if how == "alias" else ses_id)

    # When a bounce returns a copy under that id
    email_import(channel=delivery.channel, raw=dsn_for(substituted))

    # Then that message's delivery failed
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert len(failure_events()) == 1


@pytest.mark.django_db
def test_a_free_text_bounce_quoting_our_message_id_fails_the_delivery(sent_reply):
    delivery, message_id = sent_reply
    raw = (
        (CORPUS / "bounces" / "qmail_01.txt")
        .read_bytes()
        .replace(b"Message removed", f"Message-ID: {message_id}\nSubject: Re: Refund\n\nYour refund".encode())
    )

    outcome = email_import(channel=delivery.channel, raw=raw)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == ("failed", "bounced")
    assert delivery.error.startswith("<userx@example.de>: I'm afraid I wasn't able to deliver your message")
    assert outcome.status == "bounce"


@pytest.mark.django_db
def test_the_service_called_twice_records_one_failure(sent_reply):
    delivery, message_id = sent_reply
    bounce = parse_email(dsn_for(message_id), channel=None).metadata["bounce"]

    first = email_bounce_record(channel=delivery.channel, event=None, bounce=bounce)
    second = email_bounce_record(channel=delivery.channel, event=None, bounce=bounce)

    assert (first.is_changed, second.is_changed) == (True, False)
    assert first.delivery_id == second.delivery_id == delivery.pk
    assert len(failure_events()) == 1
