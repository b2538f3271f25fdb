"""The plain-header shortcut (``bounce_parts.plain_header``): a Subject that decoding cannot change is read as sent,
and it must give exactly what the standard policy's decoding gives, on the whole corpus and on crafted headers."""

import email.policy
from email.parser import BytesParser

import pytest

from channels_app.adapters.base import PayloadError
from channels_app.providers.email import bounce_parts, parsing
from channels_app.providers.email.bounce_parts import plain_header
from channels_app.providers.email.parsing import POLICY, parse_email
from tests.channels_app.providers.email.test_parsing import CORPUS_FILES


def decoded_by_policy(raw: bytes, name: str) -> str:
    value = BytesParser(policy=email.policy.default).parsebytes(raw).get(name)
    return " ".join(str(value).split()) if value is not None else ""


def parsed_outcome(raw: bytes):
    try:
        return parse_email(raw, channel=None)
    except PayloadError as exc:
        return f"PayloadError: {exc}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_plain_header_agrees_with_the_policy_on_the_corpus(path):
    raw = path.read_bytes()
    message = BytesParser(policy=POLICY).parsebytes(raw)

    plain = plain_header(message, "Subject")

    if plain is not None:
        assert plain == decoded_by_policy(raw, "Subject")


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_parse_email_is_the_same_without_the_shortcut(path, monkeypatch):
    raw = path.read_bytes()
    with_shortcut = parsed_outcome(raw)

    monkeypatch.setattr(parsing, "plain_header", lambda message, name: None)
    monkeypatch.setattr(bounce_parts, "plain_header", lambda message, name: None)
    without_shortcut = parsed_outcome(raw)

    assert with_shortcut == without_shortcut


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Subject: Printer on fire\r\n", "Printer on fire"),
        (b"Subject:   spaced \t out  \r\n", "spaced out"),
        (b"Subject: folded\r\n   over two lines\r\n", "folded over two lines"),
        (b"Subject: [#12] Re: order (again); a@b.c <x>\r\n", "[#12] Re: order (again); a@b.c <x>"),
        (b"Subject:\r\n", ""),
        (b"X-Other: no subject here\r\n", ""),
    ],
)
def test_plain_header_reads_plain_ascii_as_sent(header, expected):
    raw = b"From: ann@example.com\r\n" + header + b"\r\nBody\r\n"
    message = BytesParser(policy=POLICY).parsebytes(raw)

    assert plain_header(message, "Subject") == expected
    assert decoded_by_policy(raw, "Subject") == expected


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n",
        b"Subject: plain then =?iso-8859-1?q?encoded?=\r\n",
        "Subject: caf\u00e9 raw 8-bit\r\n".encode(),
        b"Subject: control \x01 character\r\n",
    ],
)
def test_plain_header_leaves_what_needs_decoding_to_the_policy(header):
    raw = b"From: ann@example.com\r\n" + header + b"\r\nBody\r\n"
    message = BytesParser(policy=POLICY).parsebytes(raw)

    assert plain_header(message, "Subject") is None
    assert parse_email(raw, channel=None).subject == decoded_by_policy(raw, "Subject")[:500]
