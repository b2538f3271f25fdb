"""tickets.selectors.queues and tickets.selectors.search, below the console page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from helpdesk.errors import DomainError
from tests.factories import AdminFactory, AgentFactory, CustomerFactory, IdentityFactory, MessageFactory, TicketFactory
from tickets.models import Message, Ticket
from tickets.selectors.queues import QueueFilters, queue_counts, queue_tickets, sla_at_risk_q
from tickets.selectors.search import ticket_search_q

pytestmark = pytest.mark.django_db


def test_pages_of_two_walk_equal_times_in_id_order_without_repeats():
    agent = AgentFactory()
    same = timezone.now()
    tickets = [TicketFactory(assignee=agent, last_message_at=same) for _ in range(5)]

    seen, cursor = [], None
    for _ in range(5):
        page = queue_tickets(user=agent, queue="mine", cursor=cursor, limit=2)
        seen += [ticket.pk for ticket in page.tickets]
        cursor = page.next_cursor
        if cursor is None:
            break

    assert seen == sorted((t.pk for t in tickets), reverse=True)


def test_a_full_last_page_has_no_next_cursor():
    agent = AgentFactory()
    TicketFactory.create_batch(2, assignee=agent)

    page = queue_tickets(user=agent, queue="mine", limit=2)

    assert len(page.tickets) == 2 and page.next_cursor is None


@pytest.mark.parametrize("cursor", ["", "!!", "bm9wZQ", "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHww"])
def test_a_cursor_not_made_here_is_refused(cursor):
    agent = AgentFactory()

    with pytest.raises(DomainError) as raised:
        queue_tickets(user=agent, queue="mine", cursor=cursor or "=")

    assert raised.value.code == "invalid_cursor"


def test_unknown_queue_is_refused():
    with pytest.raises(DomainError) as raised:
        queue_tickets(user=AgentFactory(), queue="everything")

    assert raised.value.code == "unknown_queue"


def test_counts_stop_one_past_the_cap_and_an_agent_without_teams_has_none():
    agent = AgentFactory()
    TicketFactory.create_batch(4, assignee=agent)

    counts = queue_counts(user=agent, cap=2)

    assert counts["mine"] == 3
    assert counts["teams"] == 0
    assert counts["open"] == 3


def test_counts_of_an_admin_cover_every_ticket():
    TicketFactory.create_batch(3, team=None)
    TicketFactory(status=Ticket.Status.SOLVED)

    counts = queue_counts(user=AdminFactory())

    assert counts["open"] == 3 and counts["all"] == 4 and counts["unassigned"] == 3


@pytest.mark.parametrize(
    ("hours_waiting", "answered", "is_at_risk"),
    [(4, False, True), (3.9, False, False), (10, True, False)],
)
def test_sla_at_risk_boundary(settings, hours_waiting, answered, is_at_risk):
    settings.HELPDESK = {**settings.HELPDESK, "SLA_AT_RISK_HOURS": 4}
    now = timezone.now()
    wrote = now - timedelta(hours=hours_waiting)
    ticket = TicketFactory(
        priority=Ticket.Priority.HIGH,
        last_customer_message_at=wrote,
        last_message_at=wrote + timedelta(minutes=5) if answered else wrote,
    )

    assert Ticket.objects.filter(sla_at_risk_q(now=now), pk=ticket.pk).exists() is is_at_risk


def test_an_internal_note_does_not_take_a_ticket_out_of_sla_at_risk():
    agent = AgentFactory()
    wrote = timezone.now() - timedelta(hours=8)
    ticket = TicketFactory(priority=Ticket.Priority.URGENT, last_customer_message_at=wrote, last_message_at=wrote)
    MessageFactory(ticket=ticket, direction=Message.Direction.NOTE, author=agent, text="looking into it")

    page = queue_tickets(user=agent, queue="sla-at-risk")

    assert [t.pk for t in page.tickets] == [ticket.pk]


def test_search_matches_subject_text_and_customer():
    customer = CustomerFactory(name="Zed Quincy")
    IdentityFactory(customer=customer, value="zed@example.org")
    by_customer = TicketFactory(customer=customer, subject="Hi")
    by_subject = TicketFactory(subject="Refund for order 77")
    by_text = TicketFactory(subject="Hello")
    MessageFactory(ticket=by_text, text="my refund never came")
    TicketFactory(subject="Unrelated")

    def found(text):
        return set(Ticket.objects.filter(ticket_search_q(text=text)).values_list("pk", flat=True))

    assert found("refund") == {by_subject.pk, by_text.pk}
    assert found("zed@example.org") == {by_customer.pk}
    assert found("Quincy") == {by_customer.pk}
    assert found("   ") == set(Ticket.objects.values_list("pk", flat=True))  # no text: no condition


def test_filters_narrow_the_queue():
    agent = AgentFactory()
    urgent = TicketFactory(assignee=agent, priority=Ticket.Priority.URGENT)
    TicketFactory(assignee=agent, priority=Ticket.Priority.LOW)

    page = queue_tickets(user=agent, queue="mine", filters=QueueFilters(priority="urgent"))

    assert [t.pk for t in page.tickets] == [urgent.pk]
