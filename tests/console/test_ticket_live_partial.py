"""The timeline partial the live console (console.js) fetches after a push or a reconnect."""

import pytest

from tests.console.test_ticket_page import customer_on_two_channels
from tests.factories import MessageFactory, TeamFactory, TicketFactory

pytestmark = pytest.mark.django_db


def test_the_partial_is_the_newest_timeline_without_the_page(console_client):
    ticket, _first, _second = customer_on_two_channels()
    newest = MessageFactory(ticket=ticket, channel=ticket.channel, text="Pushed just now")

    response = console_client.get(f"/console/tickets/{ticket.pk}/?partial=timeline", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-message-id="{newest.pk}"' in body
    assert "Pushed just now" in body
    assert "<html" not in body and 'id="reply-form"' not in body


def test_the_partial_of_another_teams_ticket_is_404(console_client):
    ticket = TicketFactory(team=TeamFactory())

    response = console_client.get(f"/console/tickets/{ticket.pk}/?partial=timeline", HTTP_HX_REQUEST="true")

    assert response.status_code == 404
