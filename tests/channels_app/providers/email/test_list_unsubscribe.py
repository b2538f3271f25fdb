"""Desk-started email: List-Unsubscribe (RFC 2369) and one-click List-Unsubscribe-Post (RFC 8058) from the
OutboundMessage, no "Re:" in the subject, Auto-Submitted: auto-generated; replies keep none of these."""

import pytest

from channels_app.models import Channel
from channels_app.providers.email.outbound import build_email
from channels_app.types import OutboundMessage
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel() -> Channel:
    return ChannelFactory(kind=Channel.Kind.EMAIL, name="Acme Support", address="support@desk.example")


def outbound(**fields) -> OutboundMessage:
    values = {"message_id": 7, "ticket_id": 3, "recipient": "ann@example.com", "text": "Hi", "subject": "Outage"}
    return OutboundMessage(**{**values, **fields})


def test_a_desk_started_email_carries_one_click_unsubscribe(channel):
    email = build_email(
        channel=channel,
        message=outbound(
            is_desk_started=True,
            list_unsubscribe=("https://desk.example/outreach/unsubscribe/abc/", "mailto:unsub@desk.example"),
        ),
    )

    headers = email.extra_headers
    assert headers["List-Unsubscribe"] == (
        "<https://desk.example/outreach/unsubscribe/abc/>, <mailto:unsub@desk.example>"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["Auto-Submitted"] == "auto-generated"
    assert email.subject == "Outage [#3]"


def test_without_an_https_uri_there_is_no_one_click_header(channel):
    email = build_email(channel=channel, message=outbound(list_unsubscribe=("http://localhost:8000/u/abc/",)))

    assert email.extra_headers["List-Unsubscribe"] == "<http://localhost:8000/u/abc/>"
    assert "List-Unsubscribe-Post" not in email.extra_headers


@pytest.mark.parametrize(
    "uri", ["https://desk.example/u/a>\r\nBcc: x@evil.example", "https://desk.example/u/a, <https://evil.example>"]
)
def test_a_uri_that_could_inject_a_header_is_dropped(channel, uri):
    email = build_email(channel=channel, message=outbound(list_unsubscribe=(uri,)))

    assert "List-Unsubscribe" not in email.extra_headers
    assert "List-Unsubscribe-Post" not in email.extra_headers


def test_a_reply_has_neither_header_and_keeps_re(channel):
    email = build_email(channel=channel, message=outbound())

    assert "List-Unsubscribe" not in email.extra_headers
    assert "Auto-Submitted" not in email.extra_headers
    assert email.subject == "Re: Outage [#3]"
