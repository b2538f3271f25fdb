"""The chat widget's API with JSON nested too deep, text PostgreSQL cannot store as sent, and Unicode digits where
a message id is expected: a 400 naming the problem, or the message taken in with its text made storable; never a
500. On real PostgreSQL."""

import json

import pytest

from channels_app.models import InboundEvent
from chat.models import ChatVisitor
from tests.conftest import services_or_skip
from tickets.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgres():
    services_or_skip(need_postgres=True)


def post_raw(widget, name: str, body: bytes):
    return widget.client.generic("POST", widget.url(name), body, content_type="application/json", **widget.headers())


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "body",
    [DEEP, b'{"client_id": "c-1", "text": ' + b"[" * 5000 + b"]" * 5000 + b"}"],
    ids=["100,000 deep", "5,000 deep inside a field"],
)
def test_a_deeply_nested_message_is_refused_with_400_and_nothing_is_stored(body, visitor_widget):
    response = post_raw(visitor_widget, "messages", body)

    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - JSON is nested more than 64 levels deep"}
    assert InboundEvent.objects.count() == 0
    assert Message.objects.count() == 0


def test_a_deeply_nested_session_is_refused_with_400_and_no_visitor_is_created(widget):
    response = post_raw(widget, "session", DEEP)

    assert response.status_code == 400
    assert ChatVisitor.objects.count() == 0


@pytest.mark.parametrize(("character", "stored"), [("\x00", ""), ("\ud800", "\ufffd")], ids=["NUL", "lone surrogate"])
def test_unstorable_text_from_a_visitor_is_taken_in_cleaned(character, stored, widget):
    session = post_raw(widget, "session", json.dumps({"name": f"Ann{character}"}).encode())
    assert session.status_code == 201, session.content
    widget.token = session.json()["visitor_token"]

    response = post_raw(widget, "messages", json.dumps({"client_id": "c-1", "text": f"Hi{character} there"}).encode())

    assert response.status_code == 201, response.content
    message = Message.objects.get()
    assert (message.text, message.customer.name) == (f"Hi{stored} there", f"Ann{stored}")
    assert InboundEvent.objects.get().status == InboundEvent.Status.PROCESSED


@pytest.mark.parametrize("after", ["²", "٣", "1_0", "-1"])
def test_after_in_other_digits_is_a_400(after, visitor_widget):
    """``"²".isdigit()`` is true and ``int("²")`` raises: this answered 500."""
    response = visitor_widget.get("messages", after=after)

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input.", "errors": {"after": ["A message id."]}}


def test_a_read_receipt_not_in_ascii_digits_is_a_400_and_marks_nothing(visitor_widget):
    """DRF's IntegerField read "٣" as 3 (``int()`` takes any script's digits); ids are ASCII digits everywhere."""
    message_id = visitor_widget.say("Hello").json()["id"]
    arabic_indic = "".join(chr(0x660 + int(digit)) for digit in str(message_id))

    response = visitor_widget.post("read", {"up_to": arabic_indic})

    assert response.status_code == 400
    assert response.json()["errors"] == {"up_to": ["A valid integer is required."]}
    assert ChatVisitor.objects.get().visitor_read_up_to is None
