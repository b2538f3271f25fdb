"""Canned responses' placeholders (tickets.services.canned): known ones filled, everything else left as written."""

import pytest

from tests.factories import AgentFactory, CannedResponseFactory, CustomerFactory, TicketFactory
from tickets.services.canned import canned_response_render

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket():
    return TicketFactory(customer=CustomerFactory(name="María José Pérez"), subject="Order A-1 late")


@pytest.fixture
def agent():
    return AgentFactory(username="bea", profile__display_name="Bea Ortiz")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hi {{ customer.name }}", "Hi María José Pérez"),
        ("Hi {{customer.first_name}},", "Hi María,"),
        ("Re #{{ ticket.id }}: {{ ticket.subject }}", "Re #{id}: Order A-1 late"),
        ("— {{  agent.name  }}", "— Bea Ortiz"),
        ("{{ customer.email }} and {{ nonsense }}", "{{ customer.email }} and {{ nonsense }}"),
    ],
    ids=["name", "first name, no spaces", "ticket id and subject", "agent", "unknown placeholders stay visible"],
)
def test_placeholders(ticket, agent, body, expected):
    canned = CannedResponseFactory(body=body)

    assert canned_response_render(canned=canned, ticket=ticket, agent=agent) == expected.replace("{id}", str(ticket.pk))


@pytest.mark.parametrize(
    "body",
    [
        "{% load log %}{% debug %}",
        "{{ settings.SECRET_KEY }}",
        "{{ customer.name|upper }}",
        "{{ ticket.customer.__class__ }}",
    ],
)
def test_the_body_is_never_evaluated_as_a_template(ticket, agent, body):
    canned = CannedResponseFactory(body=body)

    assert canned_response_render(canned=canned, ticket=ticket, agent=agent) == body


def test_a_value_that_looks_like_a_placeholder_is_not_expanded_again(agent):
    ticket = TicketFactory(customer=CustomerFactory(name="{{ agent.name }}"))
    canned = CannedResponseFactory(body="Hi {{ customer.name }}")

    assert canned_response_render(canned=canned, ticket=ticket, agent=agent) == "Hi {{ agent.name }}"


def test_a_customer_without_a_name_gives_empty_names(agent):
    ticket = TicketFactory(customer=CustomerFactory(name=""))
    canned = CannedResponseFactory(body="Hi {{ customer.first_name }}!")

    assert canned_response_render(canned=canned, ticket=ticket, agent=agent) == "Hi !"
