"""The chat widget's REST API through Django's test client, as the widget's script on https://shop.example calls it:
origins and CORS, visitor tokens, sending and reading messages and files, the visitor rate limit, receipts."""

import asyncio
import time
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone

from channels_app.adapters.base import PayloadError
from channels_app.adapters.registry import adapter_for
from channels_app.models import Channel, InboundEvent
from channels_app.services.channels import channel_create
from channels_app.services.inbound_process import inbound_event_process
from channels_app.services.inbound_receive import inbound_event_receive
from chat.channel_cache import chat_channel_cache_clear
from chat.models import ChatVisitor
from chat.tokens import visitor_token_sign
from realtime.groups import ticket_group
from realtime.presence import agent_presence_join, presence_leave
from tests.chat.conftest import SHOP_ORIGIN, Widget
from tests.factories import AgentFactory
from tickets.models import Attachment, Message, Ticket
from tickets.services.replies import note_create, reply_create

pytestmark = pytest.mark.django_db

ACAO = "Access-Control-Allow-Origin"


def chat_settings(**overrides):
    return override_settings(HELPDESK={**django_settings.HELPDESK, **overrides})


# --- Origin and CORS ---------------------------------------------------------------------------------------------


def test_config_from_an_allowed_origin(widget):
    response = widget.get("config")

    assert response.status_code == 200
    assert response[ACAO] == SHOP_ORIGIN
    assert response.json() == {
        "name": "Shop chat",
        "color": "#0055ff",
        "greeting": "Hi! How can we help?",
        "texts": {},
        "is_open": True,
        # Nobody is connected in this test (no agent websocket), so the widget offers email.
        "agents_online": False,
        "expected_reply_minutes": None,
        "pre_chat_form": False,
        "max_message_chars": 5000,
        "max_upload_bytes": 10 * 1024 * 1024,
        "offer_email": True,
    }


@pytest.mark.parametrize("origin", [None, "https://evil.example", "http://shop.example", "https://shop.example:8443"])
@pytest.mark.parametrize("endpoint", ["config", "messages"])
def test_a_request_without_an_allowed_origin_is_a_403_without_cors_headers(visitor_widget, origin, endpoint):
    visitor_widget.origin = origin

    response = visitor_widget.get(endpoint)

    assert response.status_code == 403
    assert response.json() == {"detail": "This site may not use this chat.", "code": "origin_not_allowed"}
    assert ACAO not in response


def test_posting_from_a_disallowed_origin_stores_nothing(visitor_widget):
    visitor_widget.origin = "https://evil.example"

    response = visitor_widget.say("hello")

    assert response.status_code == 403
    assert ACAO not in response
    assert InboundEvent.objects.count() == 0
    assert Message.objects.count() == 0


def test_preflight_from_an_allowed_origin_gets_cors_headers(widget):
    response = widget.client.options(
        widget.url("messages"),
        HTTP_ORIGIN=SHOP_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-visitor-token",
    )

    assert response.status_code == 200
    assert response[ACAO] == SHOP_ORIGIN
    assert "x-visitor-token" in response["Access-Control-Allow-Headers"]
    assert "POST" in response["Access-Control-Allow-Methods"]


def test_preflight_from_another_origin_gets_no_cors_headers(widget):
    response = widget.client.options(
        widget.url("messages"), HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )

    assert ACAO not in response


def test_an_origin_allowed_on_another_chat_channel_is_refused_here(chat_channel):
    other = channel_create(
        kind=Channel.Kind.CHAT, name="Blog chat", settings={"allowed_origins": ["https://blog.example"]}
    )

    response = Widget(other, origin=SHOP_ORIGIN).get("config")

    assert response.status_code == 403
    assert ACAO not in response


def test_other_paths_of_the_site_get_no_cors_headers(chat_channel, client):
    response = client.get("/healthz", HTTP_ORIGIN=SHOP_ORIGIN)

    assert ACAO not in response


@pytest.mark.parametrize("is_active", [True, False])
def test_unknown_or_disabled_chat_is_a_404(chat_channel, is_active):
    Channel.objects.filter(pk=chat_channel.pk).update(is_active=is_active)
    chat_channel_cache_clear()  # a queryset update sends no save signal
    public_key = "pk_nope" if is_active else chat_channel.public_key

    response = Widget(chat_channel).client.get(f"/chat/api/{public_key}/config", HTTP_ORIGIN=SHOP_ORIGIN)

    assert response.status_code == 404
    assert response.json()["code"] == "chat_not_found"


def test_with_an_agent_connected_the_widget_does_not_offer_email(widget, agent):
    # The agent console's websocket connection, as the agent consumer records it (realtime presence, on Redis).
    entry = agent_presence_join(user_id=agent.pk, connection_id="console-1")
    try:
        body = widget.get("config").json()
    finally:
        presence_leave(entries=[entry])

    assert (body["is_open"], body["agents_online"], body["offer_email"]) == (True, True, False)


def test_business_hours_closed_offers_email(chat_channel, widget):
    # Given business hours on no day at all: the chat is never open
    Channel.objects.filter(pk=chat_channel.pk).update(
        settings={**chat_channel.settings, "business_hours": {"time_zone": "Europe/Paris", "days": {}}}
    )
    chat_channel_cache_clear()  # a queryset update sends no save signal

    body = widget.get("config").json()

    assert (body["is_open"], body["offer_email"]) == (False, True)


# --- Sessions and tokens -----------------------------------------------------------------------------------------


def test_new_session_then_resume_with_the_token(widget):
    first = widget.post("session", {"name": "Ann"})

    assert first.status_code == 201
    visitor = ChatVisitor.objects.get()
    assert first.json()["visitor"] == {"id": visitor.public_id.hex, "name": "Ann", "email": "", "is_verified": False}
    assert visitor.customer.identities.get().value == visitor.public_id.hex
    assert visitor.origin == SHOP_ORIGIN

    resumed = widget.post("session", {"visitor_token": first.json()["visitor_token"]})

    assert resumed.status_code == 200
    assert resumed.json()["visitor"]["id"] == visitor.public_id.hex
    assert ChatVisitor.objects.count() == 1


def _expired_token(visitor: ChatVisitor) -> str:
    # Signed as if 200 days ago (the clock under django.core.signing, not our code, is what is moved).
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 200 * 86400):
        return visitor_token_sign(visitor_public_id=visitor.public_id, channel_id=visitor.channel_id)


def _bad_tokens(visitor: ChatVisitor, chat_channel) -> dict:
    other = channel_create(kind=Channel.Kind.CHAT, name="Other", settings={"allowed_origins": [SHOP_ORIGIN]})
    genuine = visitor_token_sign(visitor_public_id=visitor.public_id, channel_id=chat_channel.pk)
    return {
        "forged": genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB"),
        "garbage": "not-a-token",
        "expired": _expired_token(visitor),
        "other_channel": visitor_token_sign(visitor_public_id=visitor.public_id, channel_id=other.pk),
    }


@pytest.mark.parametrize("kind", ["forged", "garbage", "expired", "other_channel", "missing"])
def test_a_bad_token_is_a_403_with_no_data(visitor_widget, chat_channel, kind):
    visitor = ChatVisitor.objects.get()
    visitor_widget.say("my order number is 1234")
    visitor_widget.token = "" if kind == "missing" else _bad_tokens(visitor, chat_channel)[kind]

    listing = visitor_widget.get("messages")
    posting = visitor_widget.say("injected")

    for response in (listing, posting):
        assert response.status_code == 403
        assert response.json() == {
            "detail": "The visitor token is not valid here; start a new session.",
            "code": "invalid_token",
        }
    assert list(Message.objects.values_list("text", flat=True)) == ["my order number is 1234"]


def test_a_forged_token_on_session_is_a_403_and_creates_no_visitor(visitor_widget, chat_channel):
    visitor = ChatVisitor.objects.get()

    response = visitor_widget.post("session", {"visitor_token": _bad_tokens(visitor, chat_channel)["forged"]})

    assert response.status_code == 403
    assert "visitor_token" not in response.json()
    assert ChatVisitor.objects.count() == 1


# --- Sending messages --------------------------------------------------------------------------------------------


def test_message_is_stored_raw_then_taken_in(visitor_widget):
    response = visitor_widget.say("Where is my parcel?", client_id="m-1")

    assert response.status_code == 201
    message = Message.objects.get()
    visitor = ChatVisitor.objects.get()
    assert response.json() == {
        "id": message.pk,
        "ticket_id": message.ticket_id,
        "direction": "inbound",
        "text": "Where is my parcel?",
        "created_at": response.json()["created_at"],
        "author_name": "",
        "card": "",
        "attachments": [],
    }
    assert (message.customer_id, message.channel_id) == (visitor.customer_id, visitor.channel_id)
    assert message.metadata == {"chat_visitor": visitor.pk, "client_id": "m-1"}
    event = InboundEvent.objects.get()
    assert (event.provider_id, event.status) == (f"{visitor.public_id.hex}:m-1", "processed")
    assert message.ticket.subject == "Where is my parcel?"


def test_the_same_client_id_again_is_one_message(visitor_widget):
    first = visitor_widget.say("Hello", client_id="dup")
    again = visitor_widget.say("Hello", client_id="dup")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Message.objects.count() == 1
    assert InboundEvent.objects.count() == 1


def test_two_visitors_may_use_the_same_client_id(make_widget):
    ann, bob = make_widget(), make_widget()
    ann.start()
    bob.start()

    assert ann.say("from ann", client_id="1").status_code == 201
    assert bob.say("from bob", client_id="1").status_code == 201
    assert Message.objects.count() == 2


def test_a_message_over_the_limit_is_a_400_with_a_clear_error_and_nothing_stored(visitor_widget):
    response = visitor_widget.say("x" * 5001)

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The message is 5001 characters long; the limit is 5000. Shorten it or send it in parts.",
        "code": "message_too_long",
    }
    assert InboundEvent.objects.count() == 0
    assert Message.objects.count() == 0


def test_a_message_at_the_limit_is_taken(visitor_widget):
    assert visitor_widget.say("x" * 5000).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [({"client_id": "a"}, "text"), ({"text": "hi"}, "client_id"), ({"client_id": "a", "text": ""}, "text")],
)
def test_malformed_message_is_a_400_naming_the_field(visitor_widget, body, field):
    response = visitor_widget.post("messages", body)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert InboundEvent.objects.count() == 0


def test_html_in_a_message_is_kept_as_text(visitor_widget):
    text = '<script>alert("x")</script><b>bold</b> & <img src=x onerror=alert(1)>'

    response = visitor_widget.say(text)

    assert response.json()["text"] == text
    assert Message.objects.get().text == text
    assert visitor_widget.get("messages").json()["messages"][0]["text"] == text


@chat_settings(CHAT_VISITOR_MESSAGES_PER_MINUTE=3)
def test_a_flood_is_throttled_for_that_visitor_only(make_widget):
    flooder, other = make_widget(), make_widget()
    flooder.start()
    other.start()

    statuses = [flooder.say(f"spam {n}").status_code for n in range(3)]
    throttled = flooder.say("spam 4")
    others = other.say("a real question")

    assert statuses == [201, 201, 201]
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert throttled.json()["detail"].startswith("You are sending messages too fast")
    assert others.status_code == 201
    assert Message.objects.filter(text__startswith="spam").count() == 3


# --- Reading the conversation ------------------------------------------------------------------------------------


def test_the_conversation_has_the_agents_replies_but_never_notes(visitor_widget, chat_channel):
    visitor_widget.say("Hi")
    ticket = Ticket.objects.get()
    agent = AgentFactory(profile__display_name="Dora")
    reply_create(ticket=ticket, author=agent, text="Hello, Dora here", channel=chat_channel)
    note_create(ticket=ticket, author=agent, text="Internal: VIP customer")

    body = visitor_widget.get("messages").json()

    assert [(m["direction"], m["text"], m["author_name"]) for m in body["messages"]] == [
        ("inbound", "Hi", ""),
        ("outbound", "Hello, Dora here", "Dora"),
    ]
    assert body["cursor"] == body["messages"][-1]["id"]


def test_a_visitor_never_sees_another_visitors_conversation(make_widget):
    ann, bob = make_widget(), make_widget()
    ann.start()
    bob.start()
    ann.say("ann's secret")
    bob.say("bob's question")

    assert [m["text"] for m in bob.get("messages").json()["messages"]] == ["bob's question"]
    ann_message = Message.objects.get(text="ann's secret")
    # Marking another visitor's message read answers as for a message that does not exist.
    assert bob.post("read", {"up_to": ann_message.pk}).status_code == 404
    assert bob.post("read", {"up_to": ann_message.pk + 1000}).status_code == 404


def test_cursor_pages_with_a_fixed_query_count(visitor_widget, chat_channel, django_assert_max_num_queries):
    visitor_widget.say("first")
    ticket = Ticket.objects.get()
    agent = AgentFactory()
    visitor = ChatVisitor.objects.get()
    # 150 more messages, a third of them agents' replies and some with files, written directly for speed.
    for n in range(150):
        is_reply = n % 3 == 0
        message = Message.objects.create(
            ticket=ticket,
            customer_id=visitor.customer_id,
            channel=chat_channel,
            direction="outbound" if is_reply else "inbound",
            author=agent if is_reply else None,
            text=f"m{n}",
            provider_id="" if is_reply else f"bulk-{n}",
        )
        if n % 10 == 0:
            Attachment.objects.create(
                message=message, file="x.txt", filename=f"f{n}.txt", content_type="text/plain", size=1, sha256="0" * 64
            )

    with django_assert_max_num_queries(6):
        first = visitor_widget.get("messages")
    with django_assert_max_num_queries(6):
        second = visitor_widget.get("messages", after=first.json()["cursor"])
    with django_assert_max_num_queries(6):
        last = visitor_widget.get("messages", after=second.json()["cursor"])

    texts = [m["text"] for page in (first, second) for m in page.json()["messages"]]
    assert len(first.json()["messages"]) == 100
    assert texts == ["first"] + [f"m{n}" for n in range(150)]
    assert last.json() == {"messages": [], "cursor": second.json()["cursor"]}
    assert any(m["attachments"] for m in first.json()["messages"])


def test_after_must_be_a_message_id(visitor_widget):
    response = visitor_widget.get("messages", after="abc")

    assert response.status_code == 400


# --- Files -------------------------------------------------------------------------------------------------------


def upload(widget: Widget, content: bytes, *, name="photo.png", content_type="image/png", client_id="f-1"):
    file = SimpleUploadedFile(name, content, content_type=content_type)
    return widget.post("attachments", {"file": file, "client_id": client_id}, format="multipart")


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_a_file_becomes_a_message_the_visitor_can_download(visitor_widget):
    response = upload(visitor_widget, PNG)

    assert response.status_code == 201, response.content
    attachment = Attachment.objects.get()
    (item,) = response.json()["attachments"]
    assert item["id"] == attachment.pk
    assert (item["filename"], item["content_type"], item["size"]) == ("photo.png", "image/png", len(PNG))
    assert item["url"].endswith(f"/chat/api/{visitor_widget.channel.public_key}/attachments/{attachment.pk}")
    assert upload(visitor_widget, PNG).json()["id"] == response.json()["id"]  # same client_id: one message

    download = visitor_widget.get(f"attachments/{attachment.pk}")

    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PNG
    assert download["Content-Type"] == "image/png"
    assert download["X-Content-Type-Options"] == "nosniff"


def test_an_html_file_downloads_as_octet_stream(visitor_widget):
    upload(visitor_widget, b"<script>alert(1)</script>", name="x.html", content_type="text/html")

    download = visitor_widget.get(f"attachments/{Attachment.objects.get().pk}")

    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith("attachment")


def test_a_visitor_cannot_download_another_visitors_file(visitor_widget, make_widget):
    upload(visitor_widget, PNG)
    attachment = Attachment.objects.get()
    stranger = make_widget()
    stranger.start()

    theirs = stranger.get(f"attachments/{attachment.pk}")
    missing = stranger.get(f"attachments/{attachment.pk + 1000}")

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json() == {"detail": "No such attachment.", "code": "not_found"}


@chat_settings(CHAT_MAX_UPLOAD_BYTES=1000)
def test_a_file_over_the_limit_is_a_413_and_nothing_stored(visitor_widget):
    response = upload(visitor_widget, b"x" * 1001, name="big.bin", content_type="application/octet-stream")

    assert response.status_code == 413
    assert response.json() == {"detail": "The file is 1001 bytes; the limit is 1000 bytes.", "code": "file_too_large"}
    assert InboundEvent.objects.count() == 0
    assert Attachment.objects.count() == 0


def test_an_empty_file_is_a_400(visitor_widget):
    response = upload(visitor_widget, b"")

    assert response.status_code == 400
    assert response.json()["code"] == "empty_file"
    assert InboundEvent.objects.count() == 0


# --- Read receipts and leaving -----------------------------------------------------------------------------------


def test_read_receipts_only_move_forward(visitor_widget, chat_channel):
    first = visitor_widget.say("one").json()["id"]
    second = visitor_widget.say("two").json()["id"]

    assert visitor_widget.post("read", {"up_to": second}).status_code == 204
    assert visitor_widget.post("read", {"up_to": first}).status_code == 204

    assert ChatVisitor.objects.get().visitor_read_up_to == second


async def _receive(layer, channel_name: str, *, timeout: float):
    try:
        return await asyncio.wait_for(layer.receive(channel_name), timeout)
    except TimeoutError:
        return None


def test_a_read_receipt_reaches_the_tickets_agents_once(visitor_widget, django_capture_on_commit_callbacks):
    first = visitor_widget.say("one").json()
    second = visitor_widget.say("two").json()
    group = ticket_group(second["ticket_id"])
    layer = get_channel_layer()

    def read_up_to(message_id: int) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            visitor_widget.post("read", {"up_to": message_id})

    async def scenario():
        # An agent's connection listening on the ticket's group, on the real channel layer (Redis with REDIS_URL),
        # in one event loop as a server process has it.
        listener = await layer.new_channel()
        await layer.group_add(group, listener)
        await sync_to_async(read_up_to)(second["id"])
        received = await _receive(layer, listener, timeout=5)
        await sync_to_async(read_up_to)(first["id"])  # older: changes nothing, tells nobody
        nothing = await _receive(layer, listener, timeout=0.5)
        await layer.group_discard(group, listener)
        return received, nothing

    received, nothing = async_to_sync(scenario)()

    assert received["event"] == {
        "type": "read",
        "ticket_id": second["ticket_id"],
        "who": "visitor",
        "up_to": second["id"],
    }
    assert nothing is None


def test_leave_records_the_time_and_the_email(visitor_widget):
    response = visitor_widget.post("leave", {"email": "Ann@Example.com"})

    assert response.status_code == 204
    visitor = ChatVisitor.objects.get()
    assert visitor.left_at is not None
    assert visitor.email == "ann@example.com"
    identity = visitor.customer.identities.get(kind="email")
    assert (identity.value, identity.is_verified) == ("ann@example.com", False)


def test_leave_with_a_bad_email_is_a_400_and_changes_nothing(visitor_widget):
    response = visitor_widget.post("leave", {"email": "not an address"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_email"
    assert ChatVisitor.objects.get().left_at is None


def test_writing_again_after_leaving_clears_left_at(visitor_widget):
    visitor_widget.post("leave")
    visitor_widget.say("back again")

    assert ChatVisitor.objects.get().left_at is None


def test_writing_refreshes_a_last_seen_time_older_than_a_minute_and_leaves_a_recent_one(visitor_widget):
    long_ago = timezone.now() - timedelta(minutes=5)
    ChatVisitor.objects.update(last_seen_at=long_ago)

    visitor_widget.say("still here")
    refreshed = ChatVisitor.objects.get().last_seen_at
    visitor_widget.say("and again")

    assert refreshed > long_ago + timedelta(minutes=4)
    assert ChatVisitor.objects.get().last_seen_at == refreshed  # seconds later: not written again


# --- Channel settings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"allowed_origins": ["https://shop.example/path"]}, "settings.allowed_origins"),
        ({"allowed_origins": ["ftp://shop.example"]}, "settings.allowed_origins"),
        ({"allowed_origins": "https://shop.example"}, "settings.allowed_origins"),
        ({"color": "blue"}, "settings.color"),
        ({"color": "#12345"}, "settings.color"),
        ({"business_hours": {"time_zone": "Mars/Olympus", "days": {}}}, "settings.business_hours.time_zone"),
        ({"business_hours": {"time_zone": "UTC", "days": {"monday": []}}}, "settings.business_hours.days"),
        ({"business_hours": {"time_zone": "UTC", "days": {"mon": [["17:00", "09:00"]]}}}, "settings.business_hours"),
        ({"business_hours": {"time_zone": "UTC", "days": {"mon": [["9", "17"]]}}}, "settings.business_hours"),
        ({"email_channel_id": 999999}, "settings.email_channel_id"),
    ],
)
def test_admin_api_refuses_bad_chat_settings(admin_client, settings, message):
    response = admin_client.post(
        "/api/v1/channels", {"kind": "chat", "name": "Chat", "settings": settings}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(message)
    assert not Channel.objects.filter(kind="chat").exists()


def test_admin_api_normalises_good_chat_settings(admin_client):
    email = channel_create(kind=Channel.Kind.EMAIL, name="Support", address="support@desk.example")
    settings = {
        "allowed_origins": ["HTTPS://Shop.Example/", "http://localhost:8080"],
        "color": "#00aaFF",
        "business_hours": {"time_zone": "Europe/Paris", "days": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]]}},
        "email_channel_id": email.pk,
    }

    response = admin_client.post(
        "/api/v1/channels", {"kind": "chat", "name": "Chat", "settings": settings}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["settings"]["allowed_origins"] == ["https://shop.example", "http://localhost:8080"]


# --- The chat adapter ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"visitor": "abc", "client_id": "1", "visitor_id": 1, "text": ""}', "a chat message needs text or a file"),
        (b'{"visitor": "abc", "client_id": "1", "text": "hi"}', "'visitor_id' must be an integer"),
    ],
)
def test_a_malformed_stored_chat_event_is_quarantined_with_its_reason(chat_channel, raw, reason):
    event, _ = inbound_event_receive(channel=chat_channel, provider_id="bad-1", raw=raw, enqueue=False)

    with pytest.raises(PayloadError, match=reason):
        adapter_for(chat_channel).parse(channel=chat_channel, payload=raw)
    inbound_event_process(event_id=event.pk, event=event)

    event.refresh_from_db()
    assert event.status == "quarantined"
    assert reason in event.reason
    assert bytes(event.raw) == raw
    assert Message.objects.count() == 0
