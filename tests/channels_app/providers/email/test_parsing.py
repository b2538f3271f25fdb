"""Parsing raw email into the neutral inbound shape, checked against real-world corpora and crafted edge cases."""

from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.conf import settings

from channels_app.adapters.base import PayloadError
from channels_app.models import InboundEvent
from channels_app.providers.email.parsing import message_provider_id, parse_email, reply_text
from channels_app.types import InboundIdentity
from tests.factories import ChannelFactory
from tickets.errors import IngestRejected
from tickets.models import Attachment, Message
from tickets.services.ingest import message_ingest

# A copy of shared/corpora/email (sources and licences in SOURCES.md), so a plain clone runs these tests too.
CORPUS = Path(settings.BASE_DIR) / "tests" / "fixtures" / "email_corpus"
CORPUS_FILES = sorted(
    path
    for folder in ("cpython", "bounces", "replies")
    for path in (CORPUS / folder).iterdir()
    if path.is_file() and not path.name.endswith("_reply_text")
)


def build(*, body: str = "Hello", headers: dict | None = None, **kwargs) -> bytes:
    message = EmailMessage()
    defaults = {"From": "Ann Lee <ann@example.com>", "To": "support@desk.example", "Subject": "Help"}
    for name, value in {**defaults, **(headers or {})}.items():
        if value is not None:
            message[name] = value
    message.set_content(body)
    return message.as_bytes()


# --- The corpus -------------------------------------------------------------------------------------------------


def test_the_corpus_is_there():
    # The README counts 13 replies; the folder holds 12 .eml files and 2 expected texts.
    assert len(CORPUS_FILES) == 48 + 115 + 12


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_corpus_message_parses_or_is_refused_with_a_reason(path):
    raw = path.read_bytes()
    try:
        inbound = parse_email(raw, channel=None)
    except PayloadError as exc:
        assert str(exc) in {"no sender address", "not an email message"}
        return
    assert inbound.provider_id == message_provider_id(raw)
    assert inbound.provider_id.startswith("<") and inbound.provider_id.endswith(">")
    assert inbound.sender.kind == "email" and "@" in inbound.sender.value
    assert isinstance(inbound.text, str) and isinstance(inbound.html, str)


@pytest.mark.django_db
def test_every_corpus_message_is_stored_or_quarantined_by_the_core():
    channel = ChannelFactory(kind="email", continue_open_ticket=False)
    outcomes, reasons = Counter(), Counter()
    for path in CORPUS_FILES:
        try:
            inbound = parse_email(path.read_bytes(), channel=channel)
            result = message_ingest(channel=channel, inbound=inbound)
        except (PayloadError, IngestRejected) as exc:
            outcomes["quarantined"] += 1
            reasons[str(exc).split(":")[0]] += 1
            continue
        outcomes["stored" if result.is_new_message else "duplicate"] += 1

    # Corpus files that share a Message-ID with an earlier one are the same message to the desk.
    assert sum(outcomes.values()) == len(CORPUS_FILES)
    assert outcomes["quarantined"] == sum(reasons.values())
    assert Message.objects.filter(channel=channel).count() == outcomes["stored"]
    # Quarantined by the core: '"System Administrator"@example.com' and 'postmaster@208.24.118.205'.
    assert dict(reasons) == {"no sender address": 13, "not an email message": 1, "sender email is not usable": 2}
    assert outcomes == Counter(stored=154, duplicate=5, quarantined=16)


# --- Quoted replies -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iphone", "sparrow"])
def test_the_reply_text_matches_the_expected_text(name):
    raw = (CORPUS / "replies" / f"{name}.eml").read_bytes()
    expected = (CORPUS / "replies" / f"{name}_reply_text").read_text()

    inbound = parse_email(raw, channel=None)

    assert inbound.text.rstrip() == expected.rstrip()
    assert inbound.metadata["full_text"].startswith(inbound.text.rstrip())
    assert len(inbound.metadata["full_text"]) > len(inbound.text)


@pytest.mark.parametrize(
    "name",
    [
        "android",  # Russian "<date> пользователь ... написал:" split over two lines
        "aol",  # -----Original Message-----
        "apple_mail",  # On <date>, bob wrote:
        "apple_mail_2",  # > On ... wrote:
        "comcast",  # ----- Original Message -----
        "gmail",
        "hotmail",  # > quoted header block
        "outlook",  # From: ... Sent: ... block
        "thunderbird",  # quote first, answer below
        "yahoo",
    ],
)
def test_the_other_corpus_replies_come_down_to_their_new_text(name):
    inbound = parse_email((CORPUS / "replies" / f"{name}.eml").read_bytes(), channel=None)

    assert inbound.text == "Hello"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Thanks!\n\nOn Mon, 2 Apr 2012 at 10:00, Bob Smith\n<bob@example.com> wrote:\n> Hi", "Thanks!"),
        ("Thanks!\n\n________________________________\nFrom: Bob\nSent: Monday\n\nHi", "Thanks!"),
        ("Thanks!\n\nFrom: Bob Smith\nSent: Monday, 2 April 2012 10:00\nTo: Ann\nSubject: Hi\n\nHi", "Thanks!"),
        ("Thanks!\n\nLe 2 avr. 2012 à 10:00, Bob a écrit :\n> Salut", "Thanks!"),
        ("No quote here.\nFrom: the start of time, we did it.", "No quote here.\nFrom: the start of time, we did it."),
    ],
)
def test_quote_stripping_variants(text, expected):
    assert reply_text(text) == expected


# --- Headers --------------------------------------------------------------------------------------------------------


def test_a_plain_message_becomes_an_inbound_message():
    raw = build(
        body="Where is my order?\n",
        headers={
            "Message-ID": "  <abc@mail.example>  ",
            "Date": "Mon, 02 Apr 2012 18:22:10 +0400",
            "Subject": "=?utf-8?q?Commande_d=C3=A9j=C3=A0?=",
            "Cc": "Bob <BOB@Example.com>, carol@example.com",
        },
    )

    inbound = parse_email(raw, channel=None)

    assert inbound.provider_id == "<abc@mail.example>"
    assert inbound.sender == InboundIdentity(kind="email", value="ann@example.com", is_verified=False)
    assert inbound.sender_name == "Ann Lee"
    assert inbound.subject == "Commande déjà"
    assert inbound.text == "Where is my order?\n"
    assert inbound.html == ""
    assert inbound.sent_at == datetime(2012, 4, 2, 14, 22, 10, tzinfo=UTC)
    assert inbound.metadata["to"] == ["support@desk.example"]
    assert inbound.metadata["cc"] == ["bob@example.com", "carol@example.com"]
    assert inbound.metadata["message_id"] == "<abc@mail.example>"
    assert inbound.metadata["is_automatic"] is False
    assert inbound.metadata["is_bounce"] is False
    assert "full_text" not in inbound.metadata


def test_a_message_without_message_id_gets_a_stable_synthesized_id():
    raw = build()

    first = parse_email(raw, channel=None)
    again = parse_email(raw, channel=None)
    other = parse_email(build(body="Something else"), channel=None)

    assert first.provider_id == again.provider_id == message_provider_id(raw)
    assert first.provider_id.endswith("@no-message-id.invalid>")
    assert other.provider_id != first.provider_id


def test_an_unparseable_date_is_none():
    assert parse_email(build(headers={"Date": "the day after tomorrow"}), channel=None).sent_at is None


@pytest.mark.parametrize(
    "from_header", [None, "", "MAILER DAEMON", "undisclosed-recipients:;", '"Jetmail System" <>', "foo"]
)
def test_without_a_usable_from_address_the_message_is_refused(from_header):
    raw = b"Subject: hi\r\nTo: a@example.com\r\n"
    if from_header is not None:
        raw += f"From: {from_header}\r\n".encode()
    raw += b"\r\nbody\r\n"

    with pytest.raises(PayloadError, match="no sender address"):
        parse_email(raw, channel=None)


def test_group_syntax_and_bad_encodings_in_addresses_do_not_crash():
    raw = (
        b"From: =?bogus-charset?q?Ann=E9?= <ann@example.com>\r\n"
        b"To: undisclosed-recipients:;\r\n"
        b"Cc: Team: bob@example.com, Carol <carol@example.com>;\r\n"
        b"Subject: =?x-unknown?b?////?=\r\n"
        b"\r\nHello\r\n"
    )

    inbound = parse_email(raw, channel=None)

    assert inbound.sender.value == "ann@example.com"
    assert inbound.metadata["to"] == []
    assert inbound.metadata["cc"] == ["bob@example.com", "carol@example.com"]


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "not an email message"),
        (b"just some words\nand more\n", "not an email message"),
        (b"\x00\x01\x02binary", "not an email message"),
    ],
)
def test_bytes_that_are_not_an_email_are_refused(raw, reason):
    with pytest.raises(PayloadError, match=reason):
        parse_email(raw, channel=None)


def test_a_message_over_the_size_limit_is_refused_with_its_size(settings):
    settings.HELPDESK = {**settings.HELPDESK, "MAX_EMAIL_BYTES": 1000}
    raw = build(body="x" * 2000)

    with pytest.raises(PayloadError, match=rf"message is {len(raw)} bytes; the limit is 1000"):
        parse_email(raw, channel=None)


def test_in_reply_to_lists_the_newest_first_without_repeats():
    raw = build(
        headers={
            "In-Reply-To": "<c@x>",
            "References": "<a@x> <b@x>  <c@x>",
        }
    )

    assert parse_email(raw, channel=None).in_reply_to == ("<c@x>", "<b@x>", "<a@x>")


def test_in_reply_to_keeps_at_most_fifty_ids():
    references = " ".join(f"<{n}@x>" for n in range(80))

    inbound = parse_email(build(headers={"References": references}), channel=None)

    assert len(inbound.in_reply_to) == 50
    assert inbound.in_reply_to[0] == "<79@x>"


@pytest.mark.parametrize(
    "headers, is_automatic",
    [
        ({}, False),
        ({"Auto-Submitted": "no"}, False),
        ({"Auto-Submitted": "auto-replied"}, True),
        ({"Auto-Submitted": "auto-generated"}, True),
        ({"Precedence": "bulk"}, True),
        ({"Precedence": "junk"}, True),
        ({"Precedence": "list"}, True),
        ({"Precedence": "first-class"}, False),
        ({"X-Auto-Response-Suppress": "All"}, True),
        ({"List-Id": "<announce.example.com>"}, True),
        ({"Return-Path": "<>"}, True),
        ({"Return-Path": "<ann@example.com>"}, False),
        ({"From": "MAILER-DAEMON@mx.example.com"}, True),
        ({"From": "postmaster@example.com"}, True),
    ],
)
def test_automatic_messages_are_flagged(headers, is_automatic):
    inbound = parse_email(build(headers=headers), channel=None)

    assert inbound.metadata["is_automatic"] is is_automatic
    assert inbound.metadata["auto_submitted"] == headers.get("Auto-Submitted", "")


def test_a_delivery_status_report_is_a_bounce():
    inbound = parse_email((CORPUS / "bounces" / "dsn_01.txt").read_bytes(), channel=None)

    assert inbound.metadata["is_bounce"] is True


def test_a_mailer_daemon_failure_notice_is_a_bounce():
    raw = build(headers={"From": "MAILER-DAEMON@mx.example.com", "Subject": "Undelivered Mail Returned to Sender"})

    inbound = parse_email(raw, channel=None)

    assert inbound.metadata["is_bounce"] is True
    assert inbound.metadata["is_automatic"] is True


# --- Bodies and charsets -------------------------------------------------------------------------------------------


def bogus_charset_files() -> list[Path]:
    found = []
    for path in sorted((CORPUS / "bounces").iterdir()):
        lowered = path.read_bytes().lower()
        if b"charset=uft-8" in lowered or b'charset="uft-8"' in lowered or b"ansi_x3.110-1983" in lowered:
            found.append(path)
    return found


def test_the_bogus_charset_bounces_are_in_the_corpus():
    assert len(bogus_charset_files()) >= 2


@pytest.mark.parametrize("path", bogus_charset_files(), ids=lambda path: path.name)
def test_a_bogus_charset_falls_back_instead_of_failing(path):
    # A From header first, so files without a usable sender still test the body decoding.
    inbound = parse_email(b"From: someone@example.com\n" + path.read_bytes(), channel=None)

    assert inbound.text.strip() or inbound.html.strip()


@pytest.mark.parametrize(
    "charset, body, expected",
    [
        ("uft-8", "café".encode(), "café"),
        ("ansi_x3.110-1983", b"caf\xe9", "caf\xe9"),
        ("utf-8", b"caf\xe9 ok", "caf\ufffd ok"),
    ],
)
def test_an_unknown_or_wrong_charset_is_decoded_with_a_fallback(charset, body, expected):
    raw = (
        b"From: ann@example.com\r\nContent-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    )

    assert parse_email(raw, channel=None).text == expected


def test_an_html_only_message_gets_its_text_from_the_html():
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message.set_content("<p>Hello <b>there</b></p>", subtype="html")

    inbound = parse_email(message.as_bytes(), channel=None)

    assert inbound.text == "Hello there"
    assert inbound.html == "<p>Hello <b>there</b></p>\n"


def test_plain_text_is_preferred_and_html_kept():
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message.set_content("Plain")
    message.add_alternative("<p>Rich</p>", subtype="html")

    inbound = parse_email(message.as_bytes(), channel=None)

    assert inbound.text == "Plain\n"
    assert inbound.html == "<p>Rich</p>\n"


# --- Attachments ---------------------------------------------------------------------------------------------------


def with_attachments(*files: tuple[str, bytes]) -> bytes:
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message.set_content("See attached")
    for filename, content in files:
        message.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
    return message.as_bytes()


def test_attachments_are_kept():
    inbound = parse_email(with_attachments(("a.pdf", b"%PDF-1"), ("b.pdf", b"%PDF-2")), channel=None)

    assert [(item.filename, item.content_type, item.content) for item in inbound.attachments] == [
        ("a.pdf", "application/pdf", b"%PDF-1"),
        ("b.pdf", "application/pdf", b"%PDF-2"),
    ]
    assert inbound.text == "See attached\n"
    assert "attachments_skipped" not in inbound.metadata


def test_an_attachment_over_the_limit_is_skipped_and_recorded(settings):
    settings.HELPDESK = {**settings.HELPDESK, "MAX_ATTACHMENT_BYTES": 10}

    inbound = parse_email(with_attachments(("big.pdf", b"x" * 11), ("small.pdf", b"x" * 10)), channel=None)

    assert [item.filename for item in inbound.attachments] == ["small.pdf"]
    assert inbound.metadata["attachments_skipped"] == [
        {"filename": "big.pdf", "size": 11, "reason": "attachment is 11 bytes; the limit is 10"}
    ]


def test_attachments_past_the_total_limit_are_skipped_and_recorded(settings):
    settings.HELPDESK = {**settings.HELPDESK, "MAX_ATTACHMENT_BYTES": 100, "MAX_ATTACHMENTS_TOTAL_BYTES": 25}

    inbound = parse_email(
        with_attachments(("one.pdf", b"1" * 10), ("two.pdf", b"2" * 10), ("three.pdf", b"3" * 10)), channel=None
    )

    assert [item.filename for item in inbound.attachments] == ["one.pdf", "two.pdf"]
    assert inbound.metadata["attachments_skipped"] == [
        {"filename": "three.pdf", "size": 10, "reason": "attachments total more than 25 bytes"}
    ]


def test_an_inline_image_keeps_its_content_id():
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message.set_content("see image")
    message.add_alternative('<p><img src="cid:logo123@mail.example"></p>', subtype="html")
    message.get_payload()[1].add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<logo123@mail.example>")

    inbound = parse_email(message.as_bytes(), channel=None)

    assert [(item.filename, item.content_type, item.content_id) for item in inbound.attachments] == [
        ("logo123.png", "image/png", "logo123@mail.example")
    ]
    assert inbound.attachments[0].content == b"\x89PNG fake"
    assert inbound.html.startswith('<p><img src="cid:logo123@mail.example">')


def test_a_forwarded_message_is_kept_as_an_eml_attachment():
    forwarded = EmailMessage()
    forwarded["From"] = "bob@example.com"
    forwarded["Subject"] = "Original/question"
    forwarded.set_content("The original")
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message.set_content("Forwarding this")
    message.add_attachment(forwarded)

    inbound = parse_email(message.as_bytes(), channel=None)

    assert inbound.text == "Forwarding this\n"
    assert len(inbound.attachments) == 1
    attachment = inbound.attachments[0]
    assert (attachment.filename, attachment.content_type) == ("Original_question.eml", "message/rfc822")
    assert b"Subject: Original/question" in attachment.content
    assert b"The original" in attachment.content


@pytest.mark.django_db
def test_an_ingested_email_stores_its_attachments_and_content_ids():
    channel = ChannelFactory(kind="email", continue_open_ticket=False)
    raw = (CORPUS / "cpython" / "msg_02.txt").read_bytes()
    inbound = parse_email(raw, channel=channel)

    result = message_ingest(channel=channel, inbound=inbound)

    assert result.is_new_message and result.is_new_ticket
    assert Attachment.objects.filter(message=result.message).count() == len(inbound.attachments)
    assert InboundEvent.objects.count() == 0


def test_reusing_parsed_headers_changes_no_result_on_any_corpus_message(monkeypatch):
    """The parser's policy shares parsed header values between accesses and messages (parsing them again was a
    third of the parse time); every corpus message must come out exactly as with ``email.policy.default``."""
    import email.policy

    from channels_app.adapters.base import PayloadError
    from channels_app.providers.email import parsing

    def outcome(raw):
        try:
            return parsing.parse_email(raw, channel=None)
        except PayloadError as exc:
            return str(exc)

    files = sorted(path for path in CORPUS.rglob("*") if path.is_file() and path.suffix in (".txt", ".eml"))
    raws = [path.read_bytes() for path in files]
    assert len(raws) > 150
    shared = [outcome(raw) for raw in raws]
    # Twice: the second time every header comes from the shared values.
    assert [outcome(raw) for raw in raws] == shared
    monkeypatch.setattr(parsing, "POLICY", email.policy.default)
    assert [outcome(raw) for raw in raws] == shared
