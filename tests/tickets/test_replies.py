"""Agents' replies (out on a channel, once) and internal notes (never out)."""

import pytest

from channels_app.models import Channel, Delivery
from channels_app.types import InboundIdentity, InboundMessage
from customers.models import CustomerIdentity
from tests.factories import AgentFactory, ChannelFactory, CustomerFactory, TeamFactory, TicketFactory
from tickets.models import Message, Ticket
from tickets.services.ingest import message_ingest
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db


def customer_writes(channel, provider_id, *identities, text="Hello?") -> Message:
    """The customer writes on ``channel`` as the first identity; the others are vouched for by the channel."""
    first, *extra = [InboundIdentity(kind=kind, value=value, is_verified=True) for kind, value in identities]
    inbound = InboundMessage(provider_id=provider_id, sender=first, extra_identities=tuple(extra), text=text)
    return message_ingest(channel=channel, inbound=inbound).message


def reply(client, ticket, **body):
    headers = {}
    if "idempotency_header" in body:
        headers["HTTP_IDEMPOTENCY_KEY"] = body.pop("idempotency_header")
    return client.post(f"/api/v1/tickets/{ticket.pk}/replies", body, format="json", **headers)


def note(client, ticket, **body):
    return client.post(f"/api/v1/tickets/{ticket.pk}/notes", body, format="json")


def outbound_messages(ticket) -> list[Message]:
    return list(Message.objects.filter(ticket=ticket, direction=Message.Direction.OUTBOUND))


@pytest.fixture
def shop(db) -> Channel:
    return ChannelFactory(kind=Channel.Kind.API, name="Shop")


@pytest.fixture
def app(db) -> Channel:
    return ChannelFactory(kind=Channel.Kind.API, name="Mobile app")


@pytest.fixture
def conversation(shop, app) -> Ticket:
    """Ann wrote in the shop as her external id (the shop vouches for her email too), then in the app by email."""
    customer_writes(shop, "shop-1", ("external", "u-1"), ("email", "ann@example.com"))
    second = customer_writes(app, "app-1", ("email", "ann@example.com"))
    return second.ticket


def test_reply_goes_to_the_channel_the_customer_last_used_and_the_identity_they_wrote_from(
    agent_client, conversation, app
):
    response = reply(agent_client, conversation, text="We are on it.")

    assert response.status_code == 201, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.channel, message.direction, message.text) == (app, "outbound", "We are on it.")
    assert (message.identity.kind, message.identity.value) == ("email", "ann@example.com")
    delivery = Delivery.objects.get()
    assert (delivery.message, delivery.channel, delivery.recipient, delivery.status) == (
        message,
        app,
        "ann@example.com",
        "queued",
    )
    assert response.json()["channel"] == {"id": app.pk, "kind": "api", "name": "Mobile app"}
    assert response.json()["delivery"]["recipient"] == "ann@example.com"


def test_explicit_channel_is_honoured_with_the_identity_last_used_on_it(agent_client, conversation, shop):
    response = reply(agent_client, conversation, text="Answering in the shop.", channel_id=shop.pk)

    assert response.status_code == 201, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert message.channel == shop
    assert (message.identity.kind, message.identity.value) == ("external", "u-1")
    assert Delivery.objects.get().recipient == "u-1"


def test_recipient_is_the_identity_of_the_latest_message_on_that_channel(agent_client, shop):
    # Given Ann wrote in the shop first by email, then as her external id
    customer_writes(shop, "shop-1", ("email", "ann@example.com"), ("external", "u-1"))
    ticket = customer_writes(shop, "shop-2", ("external", "u-1")).ticket

    response = reply(agent_client, ticket, text="Hi Ann")

    assert response.status_code == 201
    assert Delivery.objects.get().recipient == "u-1"


def test_without_a_message_on_the_channel_the_best_addressable_identity_is_used(agent_client, shop):
    # Given a customer who never wrote on the channel, with an unverified and a verified email
    customer = CustomerFactory()
    CustomerIdentity.objects.create(customer=customer, kind="email", value="old@example.com", is_verified=False)
    CustomerIdentity.objects.create(customer=customer, kind="email", value="ann@example.com", is_verified=True)
    ticket = TicketFactory(customer=customer, channel=shop)

    response = reply(agent_client, ticket, text="Hi")

    assert response.status_code == 201
    assert Delivery.objects.get().recipient == "ann@example.com"


def test_customer_with_no_identity_the_channel_can_address_is_a_409_and_nothing_is_created(agent_client, shop):
    customer = CustomerFactory(last_channel=shop)
    ticket = TicketFactory(customer=customer, channel=shop, status=Ticket.Status.NEW)

    response = reply(agent_client, ticket, text="Hello")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "The customer has no external or email or phone or chat_visitor to reach them on Shop.",
        "code": "no_recipient_identity",
    }
    assert Message.objects.count() == 0
    assert Delivery.objects.count() == 0
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee_id, ticket.first_response_at, ticket.version) == ("new", None, None, 1)
    assert TimelineEvent.objects.count() == 0


def test_channel_without_an_adapter_is_a_400_and_nothing_is_created(agent_client, conversation):
    # Given an SMS channel whose provider no installed adapter handles
    sms = ChannelFactory(kind=Channel.Kind.SMS, name="Texts", provider="not-installed")
    before = Message.objects.count()

    response = reply(agent_client, conversation, text="Hello", channel_id=sms.pk)

    assert response.status_code == 400
    assert response.json() == {"detail": "The channel Texts cannot send messages yet.", "code": "channel_cannot_send"}
    assert Message.objects.count() == before
    assert Delivery.objects.count() == 0
    assert not TimelineEvent.objects.filter(type__in=["assigned", "status_changed"]).exists()


def test_default_channel_skips_a_last_channel_that_cannot_send(agent_client, shop):
    # Given a customer whose last channel is SMS with no installed adapter, on a ticket that started in the shop
    sms = ChannelFactory(kind=Channel.Kind.SMS, provider="not-installed")
    customer_writes(shop, "shop-1", ("external", "u-1"))
    ticket = Ticket.objects.get()
    ticket.customer.last_channel = sms
    ticket.customer.save()

    response = reply(agent_client, ticket, text="Hello")

    assert response.status_code == 201
    assert Delivery.objects.get().channel == shop


def test_disabled_channel_is_a_400_and_nothing_is_created(agent_client, conversation, shop):
    Channel.objects.filter(pk=shop.pk).update(is_active=False)

    response = reply(agent_client, conversation, text="Hello", channel_id=shop.pk)

    assert response.status_code == 400
    assert response.json()["code"] == "channel_disabled"
    assert outbound_messages(conversation) == []
    assert Delivery.objects.count() == 0


def test_unknown_channel_is_a_404(agent_client, conversation):
    response = reply(agent_client, conversation, text="Hello", channel_id=999999)

    assert response.status_code == 404
    assert response.json()["detail"] == "No such channel."
    assert outbound_messages(conversation) == []


@pytest.mark.parametrize("where", ["body", "header"])
def test_same_idempotency_key_twice_is_one_message_and_one_delivery(agent_client, conversation, where):
    key = {"idempotency_key": "click-1"} if where == "body" else {"idempotency_header": "click-1"}

    first = reply(agent_client, conversation, text="Once", **key)
    second = reply(agent_client, conversation, text="Once", **key)

    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert len(outbound_messages(conversation)) == 1
    assert Delivery.objects.count() == 1
    assert Message.objects.get(pk=first.json()["id"]).idempotency_key == "click-1"
    assert TimelineEvent.objects.filter(ticket=conversation, type="assigned").count() == 1


@pytest.mark.parametrize("first_kind", ["note", "reply"])
def test_an_idempotency_key_used_by_a_note_is_not_taken_for_a_reply_or_back(agent_client, conversation, first_kind):
    first_call, second_call = (note, reply) if first_kind == "note" else (reply, note)
    first = first_call(agent_client, conversation, text="First", idempotency_key="k-1")

    second = second_call(agent_client, conversation, text="Second", idempotency_key="k-1")

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["code"] == "key_reused"
    written = Message.objects.filter(ticket=conversation).exclude(direction=Message.Direction.INBOUND)
    assert [message.text for message in written] == ["First"]
    assert Delivery.objects.count() == (1 if first_kind == "reply" else 0)


def test_different_idempotency_keys_are_two_replies(agent_client, conversation):
    reply(agent_client, conversation, text="One", idempotency_key="a")
    reply(agent_client, conversation, text="Two", idempotency_key="b")

    assert [m.text for m in outbound_messages(conversation)] == ["One", "Two"]
    assert Delivery.objects.count() == 2


def test_first_reply_sets_first_response_assigns_the_author_and_opens_a_new_ticket(agent_client, agent, conversation):
    # Given a new, unassigned ticket
    assert (conversation.status, conversation.assignee_id, conversation.first_response_at) == ("new", None, None)

    # When the agent replies twice
    first = reply(agent_client, conversation, text="Looking into it")
    conversation.refresh_from_db()
    first_response_at = conversation.first_response_at
    second = reply(agent_client, conversation, text="Found it")

    # Then the first reply set the response time, the assignee and the status, each with its event
    assert first.status_code == second.status_code == 201
    conversation.refresh_from_db()
    assert first_response_at is not None
    assert conversation.first_response_at == first_response_at
    assert (conversation.status, conversation.assignee_id) == ("open", agent.pk)
    assert conversation.last_message_at >= first_response_at
    assert list(
        TimelineEvent.objects.filter(ticket=conversation)
        .exclude(type="ticket_created")
        .order_by("id")
        .values_list("type", "actor_kind", "actor_id", "params")
    ) == [
        ("assigned", "agent", agent.pk, {"from": None, "to": agent.pk, "reason": "replied"}),
        ("status_changed", "agent", agent.pk, {"from": "new", "to": "open"}),
    ]


def test_reply_keeps_an_existing_assignee(agent_client, conversation):
    colleague = AgentFactory()
    Ticket.objects.filter(pk=conversation.pk).update(assignee=colleague)

    response = reply(agent_client, conversation, text="Covering for Carl")

    assert response.status_code == 201
    conversation.refresh_from_db()
    assert conversation.assignee_id == colleague.pk
    assert not TimelineEvent.objects.filter(type="assigned").exists()


@pytest.mark.parametrize(("status", "solved"), [("pending", False), ("solved", True), ("on_hold", False)])
def test_reply_with_a_status_sets_it(agent_client, agent, conversation, status, solved):
    response = reply(agent_client, conversation, text="Done on our side", status=status)

    assert response.status_code == 201
    conversation.refresh_from_db()
    assert conversation.status == status
    assert (conversation.solved_at is not None) == solved
    assert list(
        TimelineEvent.objects.filter(ticket=conversation, type="status_changed").values_list("actor_id", "params")
    ) == [(agent.pk, {"from": "new", "to": status})]


def test_reply_on_a_closed_ticket_is_a_409_and_nothing_is_created(agent_client, conversation):
    Ticket.objects.filter(pk=conversation.pk).update(status=Ticket.Status.CLOSED)

    response = reply(agent_client, conversation, text="Hello again")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "This ticket is closed; start a new ticket to write to the customer.",
        "code": "ticket_closed",
    }
    assert outbound_messages(conversation) == []
    assert Delivery.objects.count() == 0
    conversation.refresh_from_db()
    assert (conversation.assignee_id, conversation.first_response_at) == (None, None)


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "   \n "}, {}, {"html": "<p> </p>"}])
def test_empty_reply_is_a_400_and_nothing_is_created(agent_client, conversation, body):
    response = reply(agent_client, conversation, **body)

    assert response.status_code == 400
    assert response.json() == {"detail": "A reply needs text.", "code": "empty_reply"}
    assert outbound_messages(conversation) == []
    assert Delivery.objects.count() == 0
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee_id) == ("new", None)


def test_html_only_reply_is_sanitised_and_gets_a_text_version(agent_client, conversation):
    response = reply(agent_client, conversation, html="<p>See <b>this</b></p><script>alert(1)</script>")

    assert response.status_code == 201
    message = Message.objects.get(pk=response.json()["id"])
    assert "script" not in message.html
    assert message.text.strip() == "See this"


def test_reply_to_a_ticket_the_agent_may_not_see_is_a_404(agent_client, conversation):
    Ticket.objects.filter(pk=conversation.pk).update(team=TeamFactory())

    response = reply(agent_client, conversation, text="Hello")

    assert response.status_code == 404
    assert outbound_messages(conversation) == []
    assert Delivery.objects.count() == 0


def test_reply_is_sent_after_commit(agent_client, conversation, django_capture_on_commit_callbacks):
    # Given the API channel has no callback URL: the company's systems read replies over the REST API
    with django_capture_on_commit_callbacks(execute=True):
        response = reply(agent_client, conversation, text="Sent")

    assert response.status_code == 201
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert delivery.sent_at is not None


# --- Notes ---------------------------------------------------------------------------------------------------


def test_note_is_internal_and_never_delivered(agent_client, agent, conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = note(agent_client, conversation, text="Customer is on the VIP list")

    assert response.status_code == 201, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.direction, message.channel, message.author, message.identity) == ("note", None, agent, None)
    assert response.json()["delivery"] is None
    assert Delivery.objects.count() == 0
    assert list(
        TimelineEvent.objects.filter(ticket=conversation, type="note_added").values_list("actor_id", "params")
    ) == [(agent.pk, {"message_id": message.pk, "mentioned_user_ids": []})]
    conversation.refresh_from_db()
    # A note is no response to the customer.
    assert (conversation.status, conversation.first_response_at, conversation.assignee_id) == ("new", None, None)


def test_note_records_mentions_of_existing_agents_and_ignores_other_names(
    agent_client, conversation, django_user_model
):
    # Given agents dora and carl, a former agent, and a user who is no agent
    dora, carl = AgentFactory(username="dora"), AgentFactory(username="carl.b")
    AgentFactory(username="gone", is_active=False)
    django_user_model.objects.create_user(username="outsider", password="x" * 12)
    text = "@dora and @carl.b, please check. Not @nobody, @gone, @outsider, nor mail@dora. Thanks @dora."

    response = note(agent_client, conversation, text=text)

    assert response.status_code == 201
    event = TimelineEvent.objects.get(type="note_added")
    assert event.params == {"message_id": response.json()["id"], "mentioned_user_ids": sorted([dora.pk, carl.pk])}


@pytest.mark.parametrize(
    "text",
    ["Thanks @dora.", "@dora, look", "(@dora)", "@dora!", "cc @dora\n"],
    ids=["period", "comma", "paren", "!", "nl"],
)
def test_mention_followed_by_punctuation_is_recorded(agent_client, conversation, text):
    dora = AgentFactory(username="dora")

    note(agent_client, conversation, text=text)

    assert TimelineEvent.objects.get(type="note_added").params["mentioned_user_ids"] == [dora.pk]


@pytest.mark.parametrize("text", ["", "  \n"])
def test_empty_note_is_a_400_and_nothing_is_created(agent_client, conversation, text):
    response = note(agent_client, conversation, text=text)

    assert response.status_code == 400
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()
    assert not TimelineEvent.objects.filter(type="note_added").exists()


def test_same_note_idempotency_key_twice_is_one_note(agent_client, conversation):
    first = note(agent_client, conversation, text="Once", idempotency_key="n-1")
    second = note(agent_client, conversation, text="Once", idempotency_key="n-1")

    assert first.json()["id"] == second.json()["id"]
    assert Message.objects.filter(direction=Message.Direction.NOTE).count() == 1
    assert TimelineEvent.objects.filter(type="note_added").count() == 1
