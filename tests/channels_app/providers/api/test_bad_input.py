"""The API channel with input PostgreSQL cannot store as sent (NUL, lone surrogates), JSON nested too deep, numbers
jsonb refuses, and phone numbers that are other channels' addresses: a 400 with the reason, or a message on the
timeline with its text made storable; never a 500 or an event that fails on every attempt. On real PostgreSQL:
SQLite stores NUL, so these bugs only show there."""

import base64
import json

import pytest

from channels_app.models import InboundEvent
from customers.models import Customer, CustomerIdentity
from tests.conftest import services_or_skip
from tests.factories import CustomerFactory, IdentityFactory
from tickets.models import Attachment, Message, Ticket

pytestmark = pytest.mark.django_db

NUL = "\x00"
SURROGATE = "\ud800"
# What each becomes (helpdesk.text): NUL is removed, a lone surrogate replaced by U+FFFD.
STORED = {NUL: "", SURROGATE: "\ufffd"}


@pytest.fixture(autouse=True)
def _postgres():
    services_or_skip(need_postgres=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def message_payload(**overrides) -> dict:
    payload = {
        "id": "shop-msg-1",
        "sender": {"email": "ann@example.com", "name": "Ann Lee"},
        "subject": "Where is my order?",
        "text": "Order A-1 has not arrived.",
    }
    payload.update(overrides)
    return payload


def post(client, channel, body, capture):
    """POST ``body`` (a dict as JSON, or bytes as sent) and run what it enqueued, as a worker would."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with capture(execute=True) as callbacks:
        response = client.generic(
            "POST", f"/api/v1/channels/{channel.pk}/messages", data, content_type="application/json"
        )
    return response, callbacks


def assert_nothing_stored():
    assert InboundEvent.objects.count() == 0
    assert Message.objects.count() == 0
    assert Ticket.objects.count() == 0
    assert Customer.objects.count() == 0


def with_bad(character: str) -> dict[str, tuple[dict, object]]:
    """Each place a string enters, with ``character`` in it: (payload, how to read the stored value back)."""
    bad = f"A{character}1"
    attachment = {"filename": f"invoice{character}.pdf", "content_base64": base64.b64encode(b"%PDF").decode()}
    return {
        "id": (message_payload(id=bad), lambda message: message.provider_id),
        "text": (message_payload(text=bad), lambda message: message.text),
        "subject": (message_payload(subject=bad), lambda message: message.ticket.subject),
        "sender name": (
            message_payload(sender={"email": "ann@example.com", "name": bad}),
            lambda message: message.customer.name,
        ),
        "external id": (
            message_payload(sender={"external_id": bad}),
            lambda message: message.customer.identities.get(kind="external").value,
        ),
        "metadata value": (message_payload(metadata={"order": bad}), lambda message: message.metadata["order"]),
        "metadata key": (
            message_payload(metadata={bad: "x"}),
            lambda message: next(key for key in message.metadata if key.startswith("A")),
        ),
        "attachment name": (
            message_payload(attachments=[attachment]),
            lambda message: Attachment.objects.get(message=message).filename.removesuffix(".pdf") + "1",
        ),
    }


CASES = [
    pytest.param(character, place, id=f"{name} in {place}")
    for character, name in ((NUL, "NUL"), (SURROGATE, "lone surrogate"))
    for place in with_bad(character)
]


@pytest.mark.parametrize(("character", "place"), CASES)
def test_unstorable_text_is_made_storable_and_the_message_lands_on_a_ticket(
    character, place, integration_client, api_channel, django_capture_on_commit_callbacks
):
    payload, stored_value = with_bad(character)[place]

    response, _ = post(integration_client, api_channel, payload, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    event = InboundEvent.objects.get()
    assert (event.status, event.attempts, event.reason) == (InboundEvent.Status.PROCESSED, 1, "")
    # The raw payload is kept exactly as posted.
    assert bytes(event.raw) == json.dumps(payload).encode()
    message = Message.objects.get()
    expected = "invoice" + STORED[character] + "1" if place == "attachment name" else f"A{STORED[character]}1"
    assert stored_value(message) == expected


def test_the_same_id_with_nul_again_is_the_same_message(
    integration_client, api_channel, django_capture_on_commit_callbacks
):
    payload = message_payload(id=f"A{NUL}1")
    first, _ = post(integration_client, api_channel, payload, django_capture_on_commit_callbacks)
    second, callbacks = post(integration_client, api_channel, payload, django_capture_on_commit_callbacks)

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["duplicate"] is True
    assert callbacks == []
    assert (InboundEvent.objects.count(), Message.objects.count()) == (1, 1)


def test_an_event_that_failed_on_nul_before_is_processed_when_retried(
    admin_client, api_channel, django_capture_on_commit_callbacks
):
    """Events stored by the code before this fix, failed for good: an admin's retry now takes them in."""
    raw = json.dumps(message_payload(text=f"Order{NUL} A-1", metadata={"note": SURROGATE})).encode()
    event = InboundEvent.objects.create(
        channel=api_channel,
        provider_id="shop-msg-1",
        raw=raw,
        content_type="application/json",
        status=InboundEvent.Status.FAILED,
        attempts=5,
        reason="ValueError: A string literal cannot contain NUL (0x00) characters.",
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/api/v1/inbound-events/{event.public_id}/retry")

    assert response.status_code == 202
    event.refresh_from_db()
    assert (event.status, event.attempts, event.reason) == (InboundEvent.Status.PROCESSED, 1, "")
    message = Message.objects.get()
    assert (message.text, message.metadata["note"]) == ("Order A-1", "\ufffd")
    assert bytes(event.raw) == raw


# --- Nesting ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="100,000 deep array"),
        pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, id="100,000 deep object"),
        pytest.param(
            json.dumps(message_payload())[:-1].encode() + b', "metadata": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001,
            id="5,000 deep inside metadata",
        ),
        pytest.param(b"[" * 100_000, id="100,000 unclosed"),
    ],
)
def test_json_nested_too_deep_is_refused_with_400_and_nothing_is_stored(
    body, integration_client, api_channel, django_capture_on_commit_callbacks
):
    response, callbacks = post(integration_client, api_channel, body, django_capture_on_commit_callbacks)

    assert response.status_code == 400
    assert response.json() == {"detail": "Malformed message: JSON is nested more than 64 levels deep"}
    assert callbacks == []
    assert_nothing_stored()


def test_brackets_inside_strings_do_not_count_as_nesting(
    integration_client, api_channel, django_capture_on_commit_callbacks
):
    text = '[{"quoted": "\\"[[[" }' + "[" * 5000
    response, _ = post(integration_client, api_channel, message_payload(text=text), django_capture_on_commit_callbacks)

    assert response.status_code == 202
    assert Message.objects.get().text == text


def test_metadata_nested_within_the_limit_is_kept(integration_client, api_channel, django_capture_on_commit_callbacks):
    metadata = {"order": {"lines": [{"options": {"size": {"value": "L"}}}]}}
    response, _ = post(
        integration_client, api_channel, message_payload(metadata=metadata), django_capture_on_commit_callbacks
    )

    assert response.status_code == 202
    assert Message.objects.get().metadata == metadata


# --- Numbers jsonb cannot hold -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("NaN", "Malformed message: NaN is not a JSON number"),
        ("Infinity", "Malformed message: Infinity is not a JSON number"),
        ("-Infinity", "Malformed message: -Infinity is not a JSON number"),
        ("1e999", "Malformed message: the number 1e999 is too large"),
        pytest.param(
            "1" * 5000,
            "Malformed message: body is not JSON we accept: Exceeds the limit (4300 digits) for integer string "
            "conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit",
            id="a 5,000-digit integer",
        ),
    ],
)
def test_numbers_jsonb_cannot_store_are_refused_with_400(
    number, detail, integration_client, api_channel, django_capture_on_commit_callbacks
):
    body = json.dumps(message_payload())[:-1].encode() + b', "metadata": {"total": ' + number.encode() + b"}}"

    response, callbacks = post(integration_client, api_channel, body, django_capture_on_commit_callbacks)

    assert response.status_code == 400
    assert response.json() == {"detail": detail}
    assert callbacks == []
    assert_nothing_stored()


# --- One phone parser ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["whatsapp:+14155550100", "sms:+14155550100", "1-800-FLOWERS", "+1 415 CALL ME"])
def test_a_phone_that_is_another_channels_address_or_letters_is_refused(
    phone, integration_client, api_channel, django_capture_on_commit_callbacks
):
    """The SMS webhook quarantines these senders; the API channel refuses them the same way, instead of attaching
    them to the SMS customer of +14155550100."""
    sms_customer = CustomerFactory(name="SMS customer")
    IdentityFactory(customer=sms_customer, kind="phone", value="+14155550100")

    response, callbacks = post(
        integration_client,
        api_channel,
        message_payload(sender={"phone": phone, "verified": True}),
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed message: sender.phone: not a phone number")
    assert callbacks == []
    assert InboundEvent.objects.count() == 0
    assert Message.objects.count() == 0
    assert list(CustomerIdentity.objects.values_list("customer_id", "value")) == [(sms_customer.pk, "+14155550100")]


def test_a_phone_with_the_usual_separators_is_the_same_customer_as_on_sms(
    integration_client, api_channel, django_capture_on_commit_callbacks
):
    sms_customer = CustomerFactory(name="SMS customer")
    IdentityFactory(customer=sms_customer, kind="phone", value="+14155550100")

    response, _ = post(
        integration_client,
        api_channel,
        message_payload(sender={"phone": "+1 (415) 555-0100", "verified": True}),
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 202
    assert Message.objects.get().customer_id == sms_customer.pk
