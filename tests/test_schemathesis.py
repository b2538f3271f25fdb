"""The API answers what its own OpenAPI schema says, for generated requests: schemathesis reads /api/v1/schema and
sends up to EXAMPLES_PER_OPERATION requests per operation to the app in process (Django's WSGI handler with the
production middleware, the test's PostgreSQL), signed in with tokens that may do each operation, half of them
naming objects that exist. Every answer must be no 5xx, have a documented status code and content type, and match
the documented body, with no field the schema does not name: the test closes every object of an answer
(``additionalProperties: false``), which the published schema leaves open for clients.
"""

import copy
import os

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agents.models import ApiToken
from agents.services import api_token_create
from channels_app.models import Channel, InboundEvent
from channels_app.services.inbound_receive import inbound_event_receive
from channels_app.types import InboundIdentity, InboundMessage
from chat.services.visitors import visitor_session_start
from chat.tokens import visitor_token_sign
from tests.channels_app.sms_fixtures import sms_channel_create
from tests.factories import AdminFactory, ChannelFactory, ContextEventFactory
from tickets.services.attachments import attachment_store
from tickets.services.ingest import message_ingest
from tickets.services.replies import note_create, reply_create

EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
# The same requests on every run, so CI is repeatable; HYPOTHESIS_EXPLORE=1 draws new ones (to look for new bugs).
IS_DERANDOMIZED = os.environ.get("HYPOTHESIS_EXPLORE", "") != "1"
SHOP_ORIGIN = "https://shop.example"
JSON = "application/json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Operations that take an integration token of the channel in their path, by the channel kind they are for.
CHANNEL_TOKEN_OPERATIONS = {
    ("POST", "/api/v1/channels/{channel_id}/messages"): "api",
    ("POST", "/api/v1/channels/{channel_id}/email/raw"): "email",
}


@pytest.fixture
def desk(db):
    """An admin with a personal token; an API, an email and an SMS channel, the first two with integration tokens;
    a customer's ticket with an inbound message, a reply, a note, an attachment and a context event; a failed
    inbound event; a chat channel with a visitor, their message and attachment."""
    admin = AdminFactory(username="schema-admin")
    api = ChannelFactory(kind=Channel.Kind.API, name="Shop backend")
    email = ChannelFactory(kind=Channel.Kind.EMAIL, name="Support mail", address="support@desk.example")
    sms = sms_channel_create(name="Texts")
    received = message_ingest(
        channel=api,
        inbound=InboundMessage(
            provider_id="schema-1",
            sender=InboundIdentity(kind="email", value="ann@customer.example", is_verified=True),
            sender_name="Ann",
            subject="Lamp",
            text="Where is my lamp?",
        ),
    )
    ticket = received.ticket
    reply_create(ticket=ticket, author=admin, text="It ships today.", channel=email)
    note_create(ticket=ticket, author=admin, text="Checked the courier.")
    attachment = attachment_store(
        message=received.message, filename="note.txt", content_type="text/plain", content=b"hello"
    )
    ContextEventFactory(customer=ticket.customer, type="order.placed", payload={"order": "A-1"}, external_id="o-1")
    # On the channel the ids name, and failed, so that reading and retrying it can succeed.
    event, _ = inbound_event_receive(
        channel=sms, provider_id="schema-event", raw=b"{}", content_type="application/x-www-form-urlencoded"
    )
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED, reason="schema fixture")
    chat = ChannelFactory(kind=Channel.Kind.CHAT, provider="widget", settings={"allowed_origins": [SHOP_ORIGIN]})
    visitor, _ = visitor_session_start(channel=chat, name="Bo", origin=SHOP_ORIGIN)
    chat_message = message_ingest(
        channel=chat,
        inbound=InboundMessage(
            provider_id="schema-chat-1",
            sender=InboundIdentity(kind="chat_visitor", value=str(visitor.public_id)),
            text="Hello",
        ),
    ).message
    chat_attachment = attachment_store(
        message=chat_message, filename="photo.png", content_type="image/png", content=b"\x89PNG\r\n\x1a\n"
    )
    return {
        "admin_token": api_token_create(name="admin", scopes=[], user=admin).secret,
        "channel_tokens": {
            "api": (api.pk, api_token_create(name="api", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=api).secret),
            "email": (
                email.pk,
                api_token_create(name="mail", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=email).secret,
            ),
        },
        "ids": {
            "ticket_id": ticket.pk,
            "customer_id": ticket.customer_id,
            "attachment_id": attachment.pk,
            "channel_id": sms.pk,  # the SMS segment count needs an SMS channel; the others take any
            "event_id": str(event.public_id),
        },
        "chat": {
            "public_key": chat.public_key,
            "attachment_id": chat_attachment.pk,
            "token": visitor_token_sign(visitor_public_id=visitor.public_id, channel_id=chat.pk),
        },
    }


@pytest.fixture
def api_schema(desk):
    # As Django's test client does: a request must not close the test's connection (its transaction holds the
    # fixture's rows), which the handler's end-of-request signal would.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        app = WSGIHandler()
        published = schemathesis.openapi.from_wsgi("/api/v1/schema?format=json", app).raw_schema
        loaded = schemathesis.openapi.from_dict(closed_answers(published))
        loaded.app = app
        yield loaded
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def closed_answers(schema: dict) -> dict:
    """``schema`` with every object schema that only answers use closed to fields it does not name. Components a
    request uses stay open: schemathesis generates requests from them, and extra fields there are ignored."""
    schema = copy.deepcopy(schema)
    components = schema["components"]["schemas"]
    operations = [operation for item in schema["paths"].values() for operation in item.values()]
    request_side = _referenced(
        components, [[operation.get("requestBody", {}), operation.get("parameters", [])] for operation in operations]
    )
    for name, component in components.items():
        if name not in request_side:
            _close(component)
    for operation in operations:
        for response in operation["responses"].values():
            for media in response.get("content", {}).values():
                _close(media.get("schema", {}))
    return schema


def _referenced(components: dict, node, found: set | None = None) -> set[str]:
    found = set() if found is None else found
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
                _referenced(components, components[name], found)
        for value in node.values():
            _referenced(components, value, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(components, value, found)
    return found


def _close(node: dict) -> None:
    if "properties" in node:
        node.setdefault("additionalProperties", False)
        for child in node["properties"].values():
            _close(child)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _close(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for child in node.get(key, []):
            _close(child)


# A raw email (POST .../email/raw) is sent as the bytes generated for it, as any binary body.
schemathesis.serializer.alias("message/rfc822", "application/octet-stream")
schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=IS_DERANDOMIZED,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_answers_what_its_schema_says(case, desk):
    key = (case.method.upper(), case.path)
    if case.path.startswith("/chat/api/"):
        # The widget's API: a visitor's token from an allowed origin, for the channel that exists (half the time)
        chat = desk["chat"]
        case.path_parameters = {
            name: chat[name] if name in chat and _names_a_real_object(value) else value
            for name, value in (case.path_parameters or {}).items()
        }
        headers = {"Origin": SHOP_ORIGIN}
        if _names_a_real_object((case.headers or {}).get("X-Visitor-Token", "")):
            headers["X-Visitor-Token"] = chat["token"]
        _call_in_savepoint(case, headers=headers)
        return
    if key in CHANNEL_TOKEN_OPERATIONS:
        channel_id, token = desk["channel_tokens"][CHANNEL_TOKEN_OPERATIONS[key]]
        case.path_parameters = {**(case.path_parameters or {}), "channel_id": channel_id}
    else:
        token = desk["admin_token"]
        case.path_parameters = {
            name: desk["ids"][name] if name in desk["ids"] and _names_a_real_object(value) else value
            for name, value in (case.path_parameters or {}).items()
        }

    _call_in_savepoint(case, headers={"Authorization": f"Bearer {token}"})


def _call_in_savepoint(case, *, headers: dict) -> None:
    """One request in a savepoint rolled back after it, as each request is its own transaction in production:
    a request that failed in the database must not leave the test's transaction aborted (every later request
    answered 500), and every example starts from the fixture's rows."""
    savepoint = transaction.savepoint()
    try:
        case.call_and_validate(headers=headers, checks=CHECKS)
    finally:
        transaction.savepoint_rollback(savepoint)


def _names_a_real_object(generated) -> bool:
    """Half the generated examples (by the value generated, so a failure replays the same) name the object that
    exists; the other half whatever id or text was generated (a 404 or 400)."""
    if isinstance(generated, int):
        return generated % 2 == 0
    return len(str(generated)) % 2 == 0
