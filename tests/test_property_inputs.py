"""Property tests (hypothesis): whatever is posted to the API channel or the raw email endpoint, the answer is not a
5xx, and a stored event ends processed or quarantined with its reason, never failed (which would mean it fails again
on every attempt). Generated input leans on what broke before: NUL, lone surrogates, 8-bit header bytes, deep
nesting, Unicode digits, huge numbers, wrong types. Bounded and derandomised, so CI runs the same examples quickly
(HYPOTHESIS_MAX_EXAMPLES raises the count for a longer local run). Real PostgreSQL: NUL bugs only show there.

Each example runs in a savepoint that is rolled back, so examples do not see each other's rows."""

import json
import os

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from agents.models import ApiToken
from agents.services import api_token_create
from channels_app.models import Channel, InboundEvent
from tests.conftest import bearer, services_or_skip
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "60"))
# The same examples on every run, so CI is repeatable; HYPOTHESIS_EXPLORE=1 draws new ones (to look for new bugs).
IS_DERANDOMIZED = os.environ.get("HYPOTHESIS_EXPLORE", "") != "1"
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=IS_DERANDOMIZED,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def _postgres():
    services_or_skip(need_postgres=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def client_for(channel: Channel) -> APIClient:
    token = api_token_create(name=f"t-{channel.pk}", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=channel)
    return bearer(APIClient(raise_request_exception=False), token.secret)


# One channel for all examples of a test (hypothesis runs them in one test function); each example's rows are
# rolled back.
@pytest.fixture
def property_api_channel() -> tuple[Channel, APIClient]:
    channel = ChannelFactory(kind=Channel.Kind.API, name="Property")
    return channel, client_for(channel)


@pytest.fixture
def property_email_channel() -> tuple[Channel, APIClient]:
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, name="Property", address="support@desk.example")
    return channel, client_for(channel)


def assert_no_5xx_and_no_failed_event(post, capture) -> None:
    """Run ``post`` and what it enqueued inside a savepoint rolled back afterwards."""
    with transaction.atomic():
        with capture(execute=True):
            response = post()
        assert response.status_code < 500, response.content[:500]
        statuses = dict(InboundEvent.objects.values_list("status", "reason"))
        assert InboundEvent.Status.FAILED not in statuses, statuses
        assert InboundEvent.Status.RECEIVED not in statuses, statuses
        transaction.set_rollback(True)


# --- The API channel -------------------------------------------------------------------------------------------

# Text that broke storage or parsing before, mixed with any text.
tricky_text = st.one_of(
    st.text(max_size=40),
    st.text(
        alphabet=st.sampled_from(["\x00", "\ud800", "\udfff", "\ufffd", "²", "٣", "a", " ", "[", '"', "\\"]),
        max_size=20,
    ),
    st.sampled_from(["", " ", "whatsapp:+14155550100", "+1 (415) 555-0100", "1-800-FLOWERS", "ann@example.com", "²"]),
)
numbers = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([10**30, -(10**30), 0, -1, True, False]),
)
json_values = st.recursive(
    st.one_of(st.none(), numbers, tricky_text),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(tricky_text, children, max_size=4)),
    max_leaves=20,
)


def field(value_strategy):
    return st.one_of(value_strategy, json_values)


api_messages = st.fixed_dictionaries(
    {
        "id": field(tricky_text),
        "sender": field(
            st.fixed_dictionaries(
                {},
                optional={
                    "external_id": field(tricky_text),
                    "email": field(tricky_text),
                    "phone": field(tricky_text),
                    "name": field(tricky_text),
                    "verified": field(st.booleans()),
                },
            )
        ),
    },
    optional={
        "text": field(tricky_text),
        "html": field(tricky_text),
        "subject": field(tricky_text),
        "sent_at": field(st.sampled_from(["2026-11-02T10:00:00Z", "yesterday", "²"])),
        "ticket_id": field(st.integers()),
        "in_reply_to": field(st.lists(tricky_text, max_size=3)),
        "metadata": field(st.dictionaries(tricky_text, json_values, max_size=4)),
        "attachments": field(
            st.lists(
                st.fixed_dictionaries(
                    {"filename": field(tricky_text), "content_base64": field(st.sampled_from(["aGk=", "", "*", "²"]))},
                    optional={"content_type": field(tricky_text)},
                ),
                max_size=2,
            )
        ),
    },
)


def encoded(message) -> st.SearchStrategy[bytes]:
    return st.sampled_from([True, False]).map(
        lambda ascii_only: json.dumps(message, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    )


api_bodies = st.one_of(
    api_messages.flatmap(encoded),
    json_values.flatmap(encoded),
    st.binary(max_size=200),
    st.integers(min_value=60, max_value=3000).map(
        lambda depth: b'{"id": "d", "metadata": ' + b"[" * depth + b"]" * depth + b"}"
    ),
    st.sampled_from(
        [
            b'{"id": NaN}',
            b'{"id": 1e999}',
            b'{"id": "x", "sender": {"email": "a@b.example"}, "text": "' + b"\xed\xa0\x80" + b'"}',
        ]
    ),
)


@pytest.mark.services
@PROPERTY
@given(body=api_bodies)
def test_no_body_posted_to_the_api_channel_gives_a_5xx_or_a_failed_event(
    body, property_api_channel, django_capture_on_commit_callbacks
):
    channel, client = property_api_channel

    assert_no_5xx_and_no_failed_event(
        lambda: client.generic(
            "POST", f"/api/v1/channels/{channel.pk}/messages", body, content_type="application/json"
        ),
        django_capture_on_commit_callbacks,
    )


# --- The email parser, through the raw email endpoint ------------------------------------------------------------

header_bytes = st.one_of(
    st.binary(max_size=40).map(lambda value: value.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(max_size=30).map(lambda value: value.replace("\r", "").replace("\n", "").encode("utf-8", "surrogatepass")),
    st.sampled_from([b"=?utf-8?q?A=00B?=", b"=?x-unknown?b?QUJD?=", b"=?utf-8?b?7aCA?=", b"Caf\xe9 \x00", b""]),
)
charsets = st.sampled_from(["utf-8", "iso-8859-1", "utf-16", "x-unknown", "us-ascii", "utf-7", "gb2312", ""])
transfer_encodings = st.sampled_from(["", "base64", "quoted-printable", "8bit", "x-token"])


@st.composite
def parts(draw, depth: int = 0) -> bytes:
    if depth < 3 and draw(st.booleans()):
        boundary = b"b%d" % depth
        children = draw(st.lists(parts(depth + 1), min_size=0, max_size=3))
        body = b"".join(b"--" + boundary + b"\r\n" + child + b"\r\n" for child in children) + b"--" + boundary + b"--"
        return b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n' + body
    content_type = draw(
        st.sampled_from([b"text/plain", b"text/html", b"application/pdf", b"image/png", b"message/rfc822"])
    )
    headers = b"Content-Type: " + content_type + b"; charset=" + draw(charsets).encode() + b"\r\n"
    encoding = draw(transfer_encodings)
    if encoding:
        headers += b"Content-Transfer-Encoding: " + encoding.encode() + b"\r\n"
    if draw(st.booleans()):
        headers += b'Content-Disposition: attachment; filename="' + draw(header_bytes).replace(b'"', b"") + b'"\r\n'
    return headers + b"\r\n" + draw(st.binary(max_size=120))


@st.composite
def emails(draw) -> bytes:
    headers = [
        (
            b"From",
            draw(
                st.one_of(
                    header_bytes,
                    st.just(b"Ann <ann@example.com>"),
                    header_bytes.map(lambda name: b'"' + name.replace(b'"', b"") + b'" <ann@example.com>'),
                )
            ),
        ),
        (b"To", draw(st.sampled_from([b"support@desk.example", b"", b"undisclosed-recipients:;"]))),
        (b"Subject", draw(header_bytes)),
        (b"Message-ID", draw(st.one_of(header_bytes, st.just(b"<m1@mail.example>")))),
        (b"Date", draw(st.one_of(header_bytes, st.just(b"Mon, 02 Nov 2026 10:00:00 +0000")))),
        (b"In-Reply-To", draw(header_bytes)),
        (b"MIME-Version", b"1.0"),
    ]
    kept = [b"%s: %s\r\n" % (name, value) for name, value in headers if draw(st.booleans()) or name == b"From"]
    return b"".join(kept) + draw(parts())


@pytest.mark.services
@PROPERTY
@given(raw=st.one_of(emails(), st.binary(min_size=1, max_size=300)))
def test_no_email_gives_a_5xx_or_a_failed_event(raw, property_email_channel, django_capture_on_commit_callbacks):
    if not raw.strip():
        raw = b"x"
    channel, client = property_email_channel

    assert_no_5xx_and_no_failed_event(
        lambda: client.generic("POST", f"/api/v1/channels/{channel.pk}/email/raw", raw, content_type="message/rfc822"),
        django_capture_on_commit_callbacks,
    )
