"""Who a chat visitor is: the host site's identity HMAC makes them its user's customer (one timeline across
channels); an email typed into the widget is never enough to join someone else's customer."""

import pytest

from channels_app.models import Channel
from channels_app.services.channels import channel_create
from chat.models import ChatVisitor
from chat.tokens import identity_hmac_compute
from customers.models import Customer, CustomerIdentity
from tests.chat.conftest import IDENTITY_SECRET, Widget
from tests.factories import CustomerFactory, IdentityFactory, MessageFactory, TicketFactory
from tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db


def identity(user_id: str, *, secret: str = IDENTITY_SECRET, **extra) -> dict:
    """What the host site's server hands its page: the user id and its HMAC with the channel's secret."""
    return {"user_id": user_id, "hmac": identity_hmac_compute(secret=secret, user_id=user_id), **extra}


@pytest.fixture
def known_customer(db):
    """A customer the company's systems know as user u-42, with an open email ticket."""
    customer = CustomerFactory(name="Ann Known")
    IdentityFactory(customer=customer, kind="external", value="u-42", is_verified=True)
    IdentityFactory(customer=customer, kind="email", value="ann@example.com", is_verified=True)
    email = channel_create(kind=Channel.Kind.EMAIL, name="Support", address="support@desk.example")
    ticket = TicketFactory(customer=customer, channel=email, status=Ticket.Status.OPEN, subject="Refund")
    MessageFactory(ticket=ticket, channel=email, text="About my refund")
    return customer


def test_a_verified_visitor_is_the_customer_and_continues_their_open_email_ticket(widget, known_customer):
    response = widget.post("session", {"identity": identity("u-42", email="ann@example.com")})

    assert response.status_code == 201
    assert response.json()["visitor"]["is_verified"] is True
    visitor = ChatVisitor.objects.get()
    assert (visitor.customer_id, visitor.external_id, visitor.email) == (known_customer.pk, "u-42", "ann@example.com")

    widget.token = response.json()["visitor_token"]
    posted = widget.say("Any news on the refund?")

    assert posted.status_code == 201
    message = Message.objects.get(pk=posted.json()["id"])
    ticket = Ticket.objects.get(customer=known_customer)  # still the one ticket
    assert (message.customer_id, message.ticket_id) == (known_customer.pk, ticket.pk)
    assert Customer.objects.count() == 1
    assert set(known_customer.identities.values_list("kind", "value")) == {
        ("external", "u-42"),
        ("email", "ann@example.com"),
        ("chat_visitor", visitor.public_id.hex),
    }
    # The widget shows the customer's conversation on that ticket, the email that opened it included.
    assert [m["text"] for m in widget.get("messages").json()["messages"]] == [
        "About my refund",
        "Any news on the refund?",
    ]


def test_a_verified_new_user_gets_a_customer_with_the_verified_email(widget):
    widget.post("session", {"identity": identity("u-7", email="New@Example.com", name="Neil")})

    visitor = ChatVisitor.objects.get()
    assert visitor.customer.name == "Neil"
    email = visitor.customer.identities.get(kind="email")
    assert (email.value, email.is_verified) == ("new@example.com", True)
    assert visitor.customer.identities.get(kind="external").value == "u-7"


@pytest.mark.parametrize(
    "bad",
    [
        identity("u-42", secret="wrong-secret"),
        {**identity("u-42"), "user_id": "u-43"},  # the HMAC of another user
        {"user_id": "u-42", "hmac": ""},
        {"user_id": "u-42", "hmac": "zz" * 32},
    ],
)
def test_a_bad_identity_hmac_is_a_403_and_nothing_is_written(widget, known_customer, bad):
    customers_before = Customer.objects.count()

    response = widget.post("session", {"identity": bad})

    assert response.status_code == 403
    assert response.json() == {"detail": "The identity could not be verified.", "code": "identity_invalid"}
    assert ChatVisitor.objects.count() == 0
    assert Customer.objects.count() == customers_before
    assert not CustomerIdentity.objects.filter(kind="chat_visitor").exists()


def test_a_channel_without_an_identity_secret_verifies_nobody(known_customer):
    channel = channel_create(
        kind=Channel.Kind.CHAT, name="No secret", settings={"allowed_origins": ["https://shop.example"]}
    )

    response = Widget(channel).post("session", {"identity": identity("u-42")})

    assert response.status_code == 403
    assert ChatVisitor.objects.count() == 0


def test_a_typed_email_of_an_existing_customer_is_not_merged(widget, known_customer):
    response = widget.start(name="Mallory", email="ANN@example.com")

    assert response.status_code == 201
    visitor = ChatVisitor.objects.get()
    assert visitor.customer_id != known_customer.pk
    assert (visitor.email, visitor.is_verified) == ("ann@example.com", False)
    # The address stays with its owner; the visitor's customer does not get it.
    assert CustomerIdentity.objects.get(kind="email", value="ann@example.com").customer_id == known_customer.pk
    assert not visitor.customer.identities.filter(kind="email").exists()

    posted = widget.say("Show me my refund")

    message = Message.objects.get(pk=posted.json()["id"])
    assert message.customer_id == visitor.customer_id
    assert message.ticket.customer_id == visitor.customer_id
    # Noted on the message for the agent: the sender's email was left out (it belongs to someone else).
    assert message.metadata["identities_not_attached"] == ["email"]
    assert [m["text"] for m in widget.get("messages").json()["messages"]] == ["Show me my refund"]
    assert known_customer.messages.count() == 1


def test_a_typed_email_nobody_owns_is_attached_unverified(widget):
    widget.start(email="fresh@example.com")

    visitor = ChatVisitor.objects.get()
    email = visitor.customer.identities.get(kind="email")
    assert (email.value, email.is_verified) == ("fresh@example.com", False)


def test_a_typed_email_that_is_not_an_address_is_a_400(widget):
    response = widget.post("session", {"email": "nope"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_email"
    assert ChatVisitor.objects.count() == 0


def test_logging_in_after_chatting_anonymously_starts_a_new_visitor_without_merging(widget, known_customer):
    widget.start()
    anonymous = ChatVisitor.objects.get()
    widget.say("anonymous question")

    response = widget.post("session", {"identity": identity("u-42")})

    assert response.status_code == 201
    verified = ChatVisitor.objects.exclude(pk=anonymous.pk).get()
    assert verified.customer_id == known_customer.pk
    assert Message.objects.get(text="anonymous question").customer_id == anonymous.customer_id
    widget.token = response.json()["visitor_token"]
    assert "anonymous question" not in [m["text"] for m in widget.get("messages").json()["messages"]]


def test_a_verified_visitor_resumes_with_their_token(widget, known_customer):
    first = widget.post("session", {"identity": identity("u-42")})

    again = widget.post("session", {"visitor_token": first.json()["visitor_token"], "identity": identity("u-42")})

    assert again.status_code == 200
    assert ChatVisitor.objects.count() == 1
