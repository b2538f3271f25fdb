"""Agents' replies to a chat: delivered on the chat while the visitor is there; by email once they have left (or
are not connected) and an address is known, on the chat channel's email channel."""

import pytest
from django.core import mail

from channels_app.models import Channel, Delivery
from channels_app.services.channels import channel_create, channel_update
from channels_app.types import InboundIdentity, InboundMessage
from chat.models import ChatVisitor
from realtime.presence import presence_leave, visitor_presence_join
from tickets.models import Message, Ticket
from tickets.services.ingest import message_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def email_channel(db) -> Channel:
    return channel_create(kind=Channel.Kind.EMAIL, name="Support", address="support@desk.example")


@pytest.fixture
def chat_with_email(chat_channel, email_channel) -> Channel:
    return channel_update(
        channel=chat_channel, settings={**chat_channel.settings, "email_channel_id": email_channel.pk}
    )


def reply(agent_client, ticket, **body):
    return agent_client.post(f"/api/v1/tickets/{ticket.pk}/replies", body, format="json")


def conversation(widget, *, email: str = "") -> Ticket:
    widget.start(**({"email": email} if email else {}))
    assert widget.say("Hello?").status_code == 201
    return Ticket.objects.get()


def test_an_agents_reply_on_the_chat_is_delivered(
    agent_client, visitor_widget, chat_channel, django_capture_on_commit_callbacks
):
    ticket = conversation(visitor_widget)

    with django_capture_on_commit_callbacks(execute=True):
        response = reply(agent_client, ticket, text="Hi, how can I help?")

    assert response.status_code == 201, response.content
    delivery = Delivery.objects.get()
    visitor = ChatVisitor.objects.get()
    assert (delivery.channel_id, delivery.recipient, delivery.status) == (
        chat_channel.pk,
        visitor.public_id.hex,
        "delivered",
    )
    assert [m["text"] for m in visitor_widget.get("messages").json()["messages"]] == ["Hello?", "Hi, how can I help?"]
    assert mail.outbox == []


def test_after_leaving_with_an_email_the_next_reply_goes_by_email(
    agent_client, chat_with_email, email_channel, widget, django_capture_on_commit_callbacks
):
    ticket = conversation(widget)
    assert widget.post("leave", {"email": "ann@example.com"}).status_code == 204

    with django_capture_on_commit_callbacks(execute=True):
        response = reply(agent_client, ticket, text="Sorry for the wait: here is the answer.")

    assert response.status_code == 201, response.content
    delivery = Delivery.objects.get()
    assert (delivery.channel_id, delivery.recipient, delivery.status) == (email_channel.pk, "ann@example.com", "sent")
    (sent,) = mail.outbox
    assert sent.to == ["ann@example.com"]
    assert "Sorry for the wait" in sent.body
    # It is still the chat's ticket, and the visitor sees it too when they come back.
    assert Message.objects.get(pk=response.json()["id"]).ticket_id == ticket.pk
    assert widget.get("messages").json()["messages"][-1]["text"] == "Sorry for the wait: here is the answer."


def test_the_customers_email_answer_continues_the_chat_ticket(
    agent_client, chat_with_email, email_channel, widget, django_capture_on_commit_callbacks
):
    ticket = conversation(widget)
    widget.post("leave", {"email": "ann@example.com"})
    with django_capture_on_commit_callbacks(execute=True):
        reply(agent_client, ticket, text="Here is the answer by email.")
    sent_id = mail.outbox[0].message()["Message-ID"]

    # The customer answers the email from their mail client.
    result = message_ingest(
        channel=email_channel,
        inbound=InboundMessage(
            provider_id="<answer-1@example.com>",
            sender=InboundIdentity(kind="email", value="ann@example.com"),
            subject="Re: Hello?",
            text="Thanks, that works.",
            in_reply_to=(sent_id,),
        ),
    )

    assert result.ticket.pk == ticket.pk
    assert widget.get("messages").json()["messages"][-1]["text"] == "Thanks, that works."


def test_after_leaving_without_an_email_the_reply_stays_on_the_chat(
    agent_client, chat_with_email, visitor_widget, django_capture_on_commit_callbacks
):
    ticket = conversation(visitor_widget)
    visitor_widget.post("leave")

    with django_capture_on_commit_callbacks(execute=True):
        reply(agent_client, ticket, text="Anyone there?")

    assert Delivery.objects.get().channel_id == chat_with_email.pk
    assert mail.outbox == []


def test_a_visitor_who_is_connected_gets_the_reply_on_the_chat(
    agent_client, chat_with_email, widget, django_capture_on_commit_callbacks
):
    ticket = conversation(widget, email="ann@example.com")
    # The widget's websocket connection, as the visitor consumer records it (realtime presence, on Redis).
    entry = visitor_presence_join(visitor_public_id=ChatVisitor.objects.get().public_id, connection_id="tab-1")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            reply(agent_client, ticket, text="Right here")
    finally:
        presence_leave(entries=[entry])

    assert Delivery.objects.get().channel_id == chat_with_email.pk
    assert mail.outbox == []


def test_a_visitor_not_connected_with_an_email_known_gets_the_reply_by_email(
    agent_client, chat_with_email, email_channel, widget, django_capture_on_commit_callbacks
):
    # Not left, but no widget connection (nothing connected in this test): the chat would not reach them.
    ticket = conversation(widget, email="ann@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        reply(agent_client, ticket, text="By email then")

    assert Delivery.objects.get().channel_id == email_channel.pk
    assert mail.outbox[0].to == ["ann@example.com"]


@pytest.mark.parametrize("setup", ["no_email_channel", "email_channel_disabled"])
def test_without_a_usable_email_channel_the_reply_stays_on_the_chat(
    agent_client, chat_with_email, email_channel, widget, setup, django_capture_on_commit_callbacks
):
    ticket = conversation(widget, email="ann@example.com")
    widget.post("leave")
    if setup == "no_email_channel":
        settings = {key: value for key, value in chat_with_email.settings.items() if key != "email_channel_id"}
        Channel.objects.filter(pk=chat_with_email.pk).update(settings=settings)
    else:
        Channel.objects.filter(pk=email_channel.pk).update(is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = reply(agent_client, ticket, text="Still here")

    assert response.status_code == 201
    assert Delivery.objects.get().channel_id == chat_with_email.pk
    assert mail.outbox == []


def test_an_explicit_channel_is_used_as_chosen(
    agent_client, chat_with_email, widget, django_capture_on_commit_callbacks
):
    ticket = conversation(widget, email="ann@example.com")
    widget.post("leave")

    with django_capture_on_commit_callbacks(execute=True):
        reply(agent_client, ticket, text="On the chat anyway", channel_id=chat_with_email.pk)

    assert Delivery.objects.get().channel_id == chat_with_email.pk
