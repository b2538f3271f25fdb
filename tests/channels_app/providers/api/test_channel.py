"""The API channel end to end: token, raw storage, processing onto the customer's ticket, idempotency."""

import base64
import hashlib
import json

import pytest
from django.core.files.storage import default_storage

from agents.models import ApiToken
from agents.services import api_token_create, api_token_revoke
from channels_app.models import Channel, InboundEvent
from customers.models import Customer, CustomerIdentity
from tests.conftest import bearer
from tests.factories import (
    AgentFactory,
    ChannelFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TicketFactory,
)
from tickets.models import Attachment, Message, Ticket
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db


def post_message(client, channel, payload, **extra):
    return client.post(
        f"/api/v1/channels/{channel.pk}/messages",
        data=json.dumps(payload),
        content_type="application/json",
        **extra,
    )


def message_payload(**overrides):
    payload = {
        "id": "shop-msg-1",
        "sender": {"email": "Ann.Lee@Example.com", "name": "Ann Lee"},
        "subject": "Where is my order?",
        "text": "Order A-1 has not arrived.",
    }
    payload.update(overrides)
    return payload


def test_posted_message_is_stored_raw_then_lands_on_a_new_ticket(
    integration_client, api_channel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_message(integration_client, api_channel, message_payload())

    assert response.status_code == 202
    event = InboundEvent.objects.get()
    assert json.loads(bytes(event.raw)) == message_payload()
    assert event.status == InboundEvent.Status.PROCESSED
    message = Message.objects.get()
    assert message.text == "Order A-1 has not arrived."
    assert message.direction == Message.Direction.INBOUND
    assert message.ticket.subject == "Where is my order?"
    assert message.ticket.status == Ticket.Status.NEW
    identity = CustomerIdentity.objects.get()
    assert (identity.kind, identity.value, identity.is_verified) == ("email", "ann.lee@example.com", False)
    assert message.customer.name == "Ann Lee"
    assert list(TimelineEvent.objects.values_list("type", flat=True)) == ["ticket_created"]


def test_same_provider_id_twice_gives_one_message(integration_client, api_channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_message(integration_client, api_channel, message_payload())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = post_message(integration_client, api_channel, message_payload())

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["message_id"] == Message.objects.get().pk
    assert callbacks == []
    assert InboundEvent.objects.count() == 1
    assert Message.objects.count() == 1
    assert Ticket.objects.count() == 1
    assert Customer.objects.count() == 1


# --- Helpers for the cases below -------------------------------------------------------------------------------


def post_processed(client, channel, payload, capture):
    """POST and run what the request enqueued (processing), as a worker would right after the commit."""
    with capture(execute=True):
        return post_message(client, channel, payload)


def assert_nothing_stored():
    assert InboundEvent.objects.count() == 0
    assert Message.objects.count() == 0
    assert Ticket.objects.count() == 0
    assert Customer.objects.count() == 0
    assert Attachment.objects.count() == 0


# --- Idempotency ----------------------------------------------------------------------------------------------


def test_a_duplicate_post_answers_with_the_first_event(
    integration_client, api_channel, django_capture_on_commit_callbacks
):
    first = post_processed(integration_client, api_channel, message_payload(), django_capture_on_commit_callbacks)
    # The same id with a different body is still the same message: the first one stands.
    second = post_processed(
        integration_client, api_channel, message_payload(text="Edited"), django_capture_on_commit_callbacks
    )

    assert first.json()["duplicate"] is False
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["status"] == "processed"
    assert second.json()["ticket_id"] == Ticket.objects.get().pk
    assert Message.objects.get().text == "Order A-1 has not arrived."


# --- Explicit ticket_id ---------------------------------------------------------------------------------------


@pytest.fixture
def ann():
    customer = CustomerFactory(name="Ann Lee")
    IdentityFactory(customer=customer, kind="email", value="ann.lee@example.com")
    return customer


def test_ticket_id_of_the_senders_own_ticket_continues_it(
    integration_client, api_channel, ann, django_capture_on_commit_callbacks
):
    api_channel.continue_open_ticket = False
    api_channel.save()
    own = TicketFactory(customer=ann)

    response = post_processed(
        integration_client, api_channel, message_payload(ticket_id=own.pk), django_capture_on_commit_callbacks
    )

    assert response.status_code == 202
    message = Message.objects.get()
    assert message.ticket_id == own.pk
    assert Ticket.objects.count() == 1
    assert InboundEvent.objects.get().status == InboundEvent.Status.PROCESSED


@pytest.mark.parametrize("whose", ["another customer's", "nobody's"])
def test_ticket_id_not_of_the_sender_is_quarantined_without_telling_which(
    whose, integration_client, api_channel, django_capture_on_commit_callbacks
):
    ticket_id = TicketFactory().pk if whose == "another customer's" else 987_654
    tickets_before, customers_before = Ticket.objects.count(), Customer.objects.count()

    response = post_processed(
        integration_client, api_channel, message_payload(ticket_id=ticket_id), django_capture_on_commit_callbacks
    )

    assert response.status_code == 202
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.QUARANTINED
    assert event.reason == f"ticket {ticket_id} is not a ticket of this sender"
    assert Message.objects.count() == 0
    assert Ticket.objects.count() == tickets_before
    assert Customer.objects.count() == customers_before  # the sender's new customer was rolled back too
    status = integration_client.get(f"/api/v1/channels/{api_channel.pk}/events/{event.public_id}")
    assert (status.json()["status"], status.json()["message_id"]) == ("quarantined", None)


def test_in_reply_to_an_earlier_message_of_the_sender_continues_its_ticket(
    integration_client, api_channel, ann, django_capture_on_commit_callbacks
):
    api_channel.continue_open_ticket = False
    api_channel.save()
    earlier = MessageFactory(ticket=TicketFactory(customer=ann), channel=api_channel, provider_id="shop-msg-0")

    post_processed(
        integration_client, api_channel, message_payload(in_reply_to="shop-msg-0"), django_capture_on_commit_callbacks
    )

    assert Message.objects.get(provider_id="shop-msg-1").ticket_id == earlier.ticket_id
    assert Ticket.objects.count() == 1


# --- Extra identities -----------------------------------------------------------------------------------------


def test_a_sender_phone_owned_by_another_customer_is_not_merged_but_noted(
    integration_client, api_channel, ann, django_capture_on_commit_callbacks
):
    bob = CustomerFactory(name="Bob")
    IdentityFactory(customer=bob, kind="phone", value="+14155550100")
    payload = message_payload(sender={"email": "ann.lee@example.com", "phone": "(415) 555-0100", "verified": True})

    post_processed(integration_client, api_channel, payload, django_capture_on_commit_callbacks)

    message = Message.objects.get()
    assert message.customer_id == ann.pk
    assert message.metadata == {"identities_not_attached": ["phone"]}
    assert CustomerIdentity.objects.get(kind="phone").customer_id == bob.pk
    assert list(ann.identities.values_list("kind", flat=True)) == ["email"]


def test_a_free_sender_phone_is_attached(integration_client, api_channel, ann, django_capture_on_commit_callbacks):
    payload = message_payload(sender={"email": "ann.lee@example.com", "phone": "(415) 555-0100", "verified": True})

    post_processed(integration_client, api_channel, payload, django_capture_on_commit_callbacks)

    assert Message.objects.get().metadata == {}
    assert sorted(ann.identities.values_list("kind", "value", "is_verified")) == [
        ("email", "ann.lee@example.com", True),
        ("phone", "+14155550100", True),
    ]


# --- HTML -----------------------------------------------------------------------------------------------------


def test_posted_html_is_sanitised_and_gives_the_text(
    integration_client, api_channel, django_capture_on_commit_callbacks
):
    payload = message_payload(
        text="",
        html='<p>Hi<script>alert(1)</script></p><img src="https://cdn.example/a.png" onerror="alert(2)">'
        '<a href="javascript:alert(3)">see</a>',
    )

    post_processed(integration_client, api_channel, payload, django_capture_on_commit_callbacks)

    message = Message.objects.get()
    assert message.html == (
        '<p>Hi</p><img data-remote-src="https://cdn.example/a.png">'
        '<a target="_blank" rel="noopener noreferrer nofollow">see</a>'
    )
    assert message.text == "Hi\nsee"


# --- Attachments ----------------------------------------------------------------------------------------------


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def test_base64_attachments_are_stored_with_size_and_digest(
    integration_client, api_channel, media_root, django_capture_on_commit_callbacks
):
    invoice, hostile = b"%PDF-1.4 invoice A-1", b"root:x:0:0"
    payload = message_payload(
        attachments=[
            {
                "filename": "invoice A-1.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(invoice).decode(),
            },
            {"filename": "../../etc/passwd", "content_base64": base64.b64encode(hostile).decode()},
        ]
    )

    response = post_processed(integration_client, api_channel, payload, django_capture_on_commit_callbacks)

    assert response.status_code == 202
    message = Message.objects.get()
    first, second = Attachment.objects.filter(message=message).order_by("id")
    digest = hashlib.sha256(invoice).hexdigest()
    assert (first.filename, first.content_type, first.size, first.sha256) == (
        "invoice A-1.pdf",
        "application/pdf",
        len(invoice),
        digest,
    )
    assert first.file.name == f"attachments/{digest[:2]}/{digest}/invoice_A-1.pdf"
    assert default_storage.open(first.file.name).read() == invoice
    assert (media_root / first.file.name).read_bytes() == invoice
    # A path in the name never leaves the attachments folder.
    hostile_digest = hashlib.sha256(hostile).hexdigest()
    assert second.content_type == "application/octet-stream"
    assert second.file.name == f"attachments/{hostile_digest[:2]}/{hostile_digest}/passwd"
    assert (media_root / second.file.name).read_bytes() == hostile


@pytest.mark.parametrize(
    ("attachment", "detail"),
    [
        (
            {"filename": "a.txt", "content_base64": "not base64!"},
            "Malformed message: attachments[0].content_base64 is not valid base64",
        ),
        (
            # A lenient decoder would drop the "*" and store something the sender never sent.
            {"filename": "a.txt", "content_base64": "aGVs*bG8="},
            "Malformed message: attachments[0].content_base64 is not valid base64",
        ),
        (
            {"filename": "a.txt", "content_base64": base64.b64encode(b"x" * 11).decode()},
            "Malformed message: attachments[0] is 11 bytes; the limit is 10",
        ),
        ({"content_base64": "aGk="}, "Malformed message: 'filename' is required"),
    ],
    ids=["invalid base64", "stray character", "over MAX_ATTACHMENT_BYTES", "no filename"],
)
def test_a_bad_attachment_is_refused_and_nothing_is_stored(
    attachment, detail, settings, integration_client, api_channel, media_root, django_capture_on_commit_callbacks
):
    settings.HELPDESK = {**settings.HELPDESK, "MAX_ATTACHMENT_BYTES": 10}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_message(integration_client, api_channel, message_payload(attachments=[attachment]))

    assert response.status_code == 400
    assert response.json() == {"detail": detail}
    assert callbacks == []
    assert_nothing_stored()
    assert list(media_root.iterdir()) == []


def test_an_attachment_at_the_limit_is_accepted(
    settings, integration_client, api_channel, media_root, django_capture_on_commit_callbacks
):
    settings.HELPDESK = {**settings.HELPDESK, "MAX_ATTACHMENT_BYTES": 10}
    attachment = {"filename": "a.txt", "content_base64": base64.b64encode(b"x" * 10).decode()}

    response = post_processed(
        integration_client, api_channel, message_payload(attachments=[attachment]), django_capture_on_commit_callbacks
    )

    assert response.status_code == 202
    assert Attachment.objects.get().size == 10


# --- Bad input ------------------------------------------------------------------------------------------------


BAD_BODIES = {
    "malformed JSON": (b'{"id": "m1", "sender": ', "Malformed message: body is not JSON: Expecting value"),
    "not UTF-8": (b'{"id": "\xff"}', "Malformed message: body is not UTF-8"),
    "JSON array": (b'[{"id": "m1"}]', "Malformed message: body must be a JSON object"),
    "JSON string": (b'"hello"', "Malformed message: body must be a JSON object"),
    "missing id": (
        {"sender": {"email": "ann@example.com"}, "text": "Hi"},
        "Malformed message: 'id' is required",
    ),
    "blank id": (
        {"id": "  ", "sender": {"email": "ann@example.com"}, "text": "Hi"},
        "Malformed message: 'id' is required",
    ),
    "missing sender": (
        {"id": "m1", "text": "Hi"},
        "Malformed message: 'sender' must be an object with at least one of external_id, email, phone",
    ),
    "sender without an identity": (
        {"id": "m1", "sender": {"name": "Ann"}, "text": "Hi"},
        "Malformed message: 'sender' needs at least one of external_id, email, phone, chat_visitor",
    ),
    "invalid email": (
        {"id": "m1", "sender": {"email": "ann(at)example.com"}, "text": "Hi"},
        "Malformed message: sender.email: not a valid email address",
    ),
    "invalid phone": (
        {"id": "m1", "sender": {"phone": "call me"}, "text": "Hi"},
        "Malformed message: sender.phone: not a phone number",
    ),
    "invalid extra identity": (
        {"id": "m1", "sender": {"external_id": "u-1", "email": "nope"}, "text": "Hi"},
        "Malformed message: sender.email: not a valid email address",
    ),
    "no content": (
        {"id": "m1", "sender": {"email": "ann@example.com"}, "text": "  "},
        "Malformed message: a message needs 'text', 'html' or attachments",
    ),
    "ticket_id not an integer": (
        {"id": "m1", "sender": {"email": "ann@example.com"}, "text": "Hi", "ticket_id": "12"},
        "Malformed message: 'ticket_id' must be a positive integer",
    ),
    "sent_at not a date": (
        {"id": "m1", "sender": {"email": "ann@example.com"}, "text": "Hi", "sent_at": "yesterday"},
        "Malformed message: 'sent_at' must be an ISO 8601 date-time",
    ),
}


@pytest.mark.parametrize(("body", "detail"), list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_a_malformed_message_is_refused_with_400_and_nothing_is_stored(
    body, detail, integration_client, api_channel, django_capture_on_commit_callbacks
):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = integration_client.post(
            f"/api/v1/channels/{api_channel.pk}/messages", data=raw, content_type="application/json"
        )

    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert callbacks == []
    assert_nothing_stored()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_is_refused_with_415(
    content_type, integration_client, api_channel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = integration_client.post(
            f"/api/v1/channels/{api_channel.pk}/messages", data="id=m1&text=hi", content_type=content_type
        )

    assert response.status_code == 415
    assert response.json() == {"detail": "Send the message as application/json."}
    assert callbacks == []
    assert_nothing_stored()


def test_a_body_over_the_api_limit_is_refused_with_413(
    settings, integration_client, api_channel, django_capture_on_commit_callbacks
):
    settings.API_MAX_BODY_BYTES = 100
    payload = message_payload(text="x" * 200)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_message(integration_client, api_channel, payload)

    assert response.status_code == 413
    assert response.json()["detail"].endswith("the limit is 100.")
    assert callbacks == []
    assert_nothing_stored()


def other_channel_token(_channel) -> str:
    return api_token_create(name="other", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=ChannelFactory()).secret


def agent_personal_token(_channel) -> str:
    user = AgentFactory()
    return api_token_create(name="mine", scopes=[ApiToken.Scope.MESSAGES_WRITE], user=user).secret


def token_without_scope(channel) -> str:
    scopes = [ApiToken.Scope.CUSTOMERS_READ, ApiToken.Scope.CUSTOMERS_WRITE]
    return api_token_create(name="crm", scopes=scopes, channel=channel).secret


def revoked_token(channel) -> str:
    issued = api_token_create(name="old", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=channel)
    api_token_revoke(token=issued.token)
    return issued.secret


CALLERS = {
    "no token": (lambda channel: None, 401, "Authentication credentials were not provided."),
    "unknown token": (lambda channel: "hd_" + "x" * 43, 401, "Invalid or revoked token."),
    "revoked token": (revoked_token, 401, "Invalid or revoked token."),
    "malformed header": (lambda channel: "two words", 401, "Invalid Authorization header: expected 'Bearer <token>'."),
    "another channel's token": (other_channel_token, 403, "This token may not post to this channel."),
    "agent's personal token": (agent_personal_token, 403, "You do not have permission to perform this action."),
    "token without messages:write": (token_without_scope, 403, "This token lacks the 'messages:write' scope."),
}


@pytest.mark.parametrize(("make_secret", "status", "detail"), list(CALLERS.values()), ids=list(CALLERS))
def test_only_this_channels_integration_token_may_post(
    make_secret, status, detail, api_client, api_channel, django_capture_on_commit_callbacks
):
    secret = make_secret(api_channel)
    if secret:
        bearer(api_client, secret)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_message(api_client, api_channel, message_payload())

    assert response.status_code == status
    assert response.json()["detail"] == detail
    assert callbacks == []
    assert_nothing_stored()


def test_an_admin_session_may_not_post_customer_messages(admin_client, api_channel):
    response = post_message(admin_client, api_channel, message_payload())

    assert response.status_code == 403
    assert "detail" in response.json()
    assert_nothing_stored()


def test_an_unknown_channel_answers_404_to_a_valid_token(integration_client, api_channel):
    response = integration_client.post(
        f"/api/v1/channels/{api_channel.pk + 1000}/messages",
        data=json.dumps(message_payload()),
        content_type="application/json",
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "No such channel.", "code": "not_found"}
    assert_nothing_stored()


def test_an_unknown_channel_answers_401_without_a_token(api_client, api_channel):
    response = api_client.post(
        f"/api/v1/channels/{api_channel.pk + 1000}/messages",
        data=json.dumps(message_payload()),
        content_type="application/json",
    )

    assert response.status_code == 401
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("channel_fields", "detail", "code"),
    [
        ({"kind": Channel.Kind.EMAIL}, "This endpoint takes messages for API channels only.", "not_an_api_channel"),
        ({"kind": Channel.Kind.API, "is_active": False}, "This channel is disabled.", "channel_disabled"),
    ],
    ids=["email channel", "disabled API channel"],
)
def test_a_channel_that_takes_no_api_messages_answers_409(
    channel_fields, detail, code, api_client, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(**channel_fields)
    secret = api_token_create(name="t", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=channel).secret

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_message(bearer(api_client, secret), channel, message_payload())

    assert response.status_code == 409
    assert response.json() == {"detail": detail, "code": code}
    assert callbacks == []
    assert_nothing_stored()
