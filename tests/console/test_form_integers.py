"""Console forms read numbers as ASCII digits (``console.forms.fields.AsciiIntegerField``), as the API and the query
strings do: Django's IntegerField took "٣" for 3, so a hand-edited form merged or changed a ticket with digits no
other entry point accepts."""

import pytest

from tests.console.conftest import csrf_token
from tests.factories import TicketFactory
from tickets.models import Ticket
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db


def arabic_indic(number: int) -> str:
    return "".join(chr(0x660 + int(digit)) for digit in str(number))


def post(client, ticket: Ticket, action: str, data: dict):
    token = csrf_token(client, f"/console/tickets/{ticket.pk}/")
    return client.post(f"/console/tickets/{ticket.pk}/{action}/", {**data, "csrfmiddlewaretoken": token})


def test_a_merge_target_not_in_ascii_digits_is_refused_and_merges_nothing(console_client):
    ticket = TicketFactory()
    target = TicketFactory(customer=ticket.customer)

    response = post(console_client, ticket, "merge", {"target": arabic_indic(target.pk)})

    assert response.status_code == 400
    assert "Enter a whole number." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.merged_into_id is None


def test_an_update_whose_version_is_not_in_ascii_digits_is_refused_and_changes_nothing(console_client):
    ticket = TicketFactory()
    values = {"status": "pending", "priority": ticket.priority, "tags": "", "assignee": "", "team": ""}

    response = post(console_client, ticket, "update", {**values, "version": arabic_indic(ticket.version)})

    assert response.status_code == 400
    assert "Enter a whole number." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert not TimelineEvent.objects.filter(ticket=ticket).exists()


def test_an_update_whose_version_is_in_ascii_digits_still_works(console_client):
    ticket = TicketFactory()
    values = {"status": "pending", "priority": ticket.priority, "tags": "", "assignee": "", "team": ""}

    response = post(console_client, ticket, "update", {**values, "version": str(ticket.version)})

    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "pending"
