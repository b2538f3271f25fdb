"""The console's live behaviour and keyboard (console/static/console/console.js) in a real browser: two agents on
one ticket see each other viewing and typing, a reply by one warns the other who is writing, a ticket change marks
the other's form stale; a queue gets new tickets without a reload, keeps its j/k selection, and catches up after a
reconnect; the shortcuts move, open, focus and show the help.

The pages here are test-only (this module is the URLconf, ``pytest.mark.urls``): the console's own base template
(which loads console.js and sets the websocket URL, the user id, #live-status and #keys-help) around the page
contract's ids, so the script is tested on exactly what the contract promises, whatever state the console's real
queue and ticket pages are in. The websocket, the channel layer, the publications and the browser are real.
"""

import os

import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template import engines
from django.test import Client
from django.urls import path
from playwright.sync_api import expect

import helpdesk.urls
from realtime.presence import KEY_PREFIX
from realtime.publish import message_created_publish, ticket_changed_publish
from tests.e2e.conftest import orm
from tests.factories import AgentFactory, ChannelFactory, MessageFactory, TeamFactory, TicketFactory
from tickets.models import Message, Ticket

WAIT_MS = 15_000
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">Eve'

pytestmark = [pytest.mark.urls(__name__)]

# --- Test-only pages with the contract's ids ---------------------------------------------------------------------

QUEUE_PAGE = """{% extends "console/base.html" %}{% block content %}
<h1>Test queue</h1>
<label for="queue-search">Search</label><input type="search" id="queue-search" name="q">
<div id="queue-results" data-refresh-url="{{ request.path }}">{% include table %}</div>
{% endblock %}"""

QUEUE_TABLE = """<table class="list" id="queue-table"><tbody>
{% for ticket in tickets %}<tr data-ticket-row data-ticket-id="{{ ticket.pk }}">
<td><a data-open href="/test-live/tickets/{{ ticket.pk }}/">{{ ticket.subject }}</a></td></tr>{% endfor %}
</tbody></table>"""

TICKET_PAGE = """{% extends "console/base.html" %}{% block content %}
<div id="ticket-page" data-ticket-id="{{ ticket.pk }}" data-customer-id="{{ ticket.customer_id }}"
     data-last-message-id="{{ last_id }}">
  <h1>{{ ticket.subject }}</h1>
  <div id="collision" aria-live="polite"></div>
  <ol id="timeline">{% include timeline %}</ol>
  <form id="reply-form" method="post">
    <input type="hidden" name="last_seen_message_id" value="{{ last_id }}">
    <label for="reply-text">Reply</label><textarea id="reply-text" name="text"></textarea>
  </form>
  <form id="note-form" method="post">
    <label for="note-text">Note</label><textarea id="note-text" name="text"></textarea>
  </form>
  <form id="ticket-form" method="post">
    <input type="hidden" name="version" value="{{ ticket.version }}">
    <label for="id_assignee">Assignee</label>
    <select id="id_assignee" name="assignee"><option value="">Nobody</option></select>
    <label for="id_status">Status</label><select id="id_status" name="status"><option>open</option></select>
  </form>
</div>
{% endblock %}"""

TIMELINE = """{% for message in messages %}
<li data-message-id="{{ message.pk }}" data-channel="api">{{ message.text }}</li>{% endfor %}"""


def _render(request, source: str, context: dict) -> HttpResponse:
    engine = engines["django"]
    context = {**context, "table": engine.from_string(QUEUE_TABLE), "timeline": engine.from_string(TIMELINE)}
    return HttpResponse(engine.from_string(source).render(context, request))


def queue_view(request):
    context = {"tickets": Ticket.objects.order_by("-pk")}
    return _render(request, QUEUE_TABLE if request.htmx else QUEUE_PAGE, context)


def ticket_view(request, ticket_id: int):
    ticket = get_object_or_404(Ticket, pk=ticket_id)
    messages = list(Message.objects.filter(ticket=ticket).order_by("pk"))
    if request.GET.get("partial") == "timeline":
        return _render(request, TIMELINE, {"messages": messages})
    last_id = messages[-1].pk if messages else ""
    return _render(request, TICKET_PAGE, {"ticket": ticket, "messages": messages, "last_id": last_id})


urlpatterns = [
    path("test-live/queue/", queue_view),
    path("test-live/tickets/<int:ticket_id>/", ticket_view),
    *helpdesk.urls.urlpatterns,
]

# --- Fixtures and helpers ----------------------------------------------------------------------------------------


@pytest.fixture
def desk(live_desk, settings):
    """The live desk as the console's origin (the agent websocket's Origin check); no presence left from before."""
    settings.PUBLIC_BASE_URL = live_desk.url
    settings.CSRF_TRUSTED_ORIGINS = [live_desk.url]
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(f"{KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)
    return live_desk


def signed_in_page(browser, desk, user):
    """A browser context of its own (a second agent is a second browser) with ``user``'s session."""
    client = Client()
    orm(client.force_login, user)
    context = browser.new_context()
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": desk.url,
            }
        ]
    )
    return context.new_page()


def live(page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


def reply_by(ticket: Ticket, author, text: str) -> Message:
    """Another agent's reply, committed and published as the reply service does."""
    with transaction.atomic():
        message = MessageFactory(
            ticket=ticket, channel=ChannelFactory(), direction=Message.Direction.OUTBOUND, author=author, text=text
        )
        message_created_publish(message=message)
    return message


def ticket_change(ticket: Ticket) -> None:
    with transaction.atomic():
        before = Ticket.objects.get(pk=ticket.pk)
        Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.PENDING, version=F("version") + 1)
        ticket_changed_publish(ticket=Ticket.objects.get(pk=ticket.pk), previous=before)


def new_ticket(subject: str, *, is_published: bool) -> Ticket:
    with transaction.atomic():
        message = MessageFactory(ticket=TicketFactory(subject=subject), channel=ChannelFactory())
        if is_published:
            message_created_publish(message=message)
    return message.ticket


def selected_ids(page) -> list[str]:
    return page.locator('[data-ticket-row][aria-selected="true"]').evaluate_all(
        "rows => rows.map(row => row.dataset.ticketId)"
    )


# --- Tests -------------------------------------------------------------------------------------------------------


def test_two_agents_on_one_ticket_see_each_other_typing_and_the_others_reply(desk, playwright_browser):
    def given():
        team = TeamFactory()
        dora = AgentFactory(profile__display_name="Dora")
        eve = AgentFactory(profile__display_name=HOSTILE_NAME)
        for agent in (dora, eve):
            agent.agent_profile.teams.add(team)
        ticket = TicketFactory(team=team, subject="Parcel lost")
        first = MessageFactory(ticket=ticket, channel=ChannelFactory(), text="Where is my parcel?")
        return dora, eve, ticket, first

    dora_user, eve_user, ticket, first = orm(given)
    url = f"{desk.url}/test-live/tickets/{ticket.pk}/"
    dora = signed_in_page(playwright_browser, desk, dora_user)
    eve = signed_in_page(playwright_browser, desk, eve_user)
    dora.goto(url)
    live(dora)
    eve.goto(url)
    live(eve)

    # Each sees the other viewing, not themselves; a name is text, never markup.
    expect(eve.locator("#collision")).to_contain_text("Also viewing: Dora", timeout=WAIT_MS)
    expect(dora.locator("#collision")).to_contain_text("Also viewing: " + HOSTILE_NAME, timeout=WAIT_MS)
    expect(eve.locator("#collision")).not_to_contain_text("Eve")

    # Dora types: Eve sees it, and sees it stop once Dora has been idle for a few seconds.
    dora.locator("#reply-text").press_sequentially("Let me check", delay=20)
    expect(eve.locator("#collision")).to_contain_text("Dora is typing", timeout=WAIT_MS)
    expect(dora.locator("#collision")).not_to_contain_text("typing")
    expect(eve.locator("#collision")).not_to_contain_text("typing", timeout=WAIT_MS)

    # Eve is writing when Dora's reply goes out: a warning, the timeline and last seen message left as they were.
    eve.locator("#reply-text").fill("I am on it")
    eve.locator("#reply-text").press("!")
    reply = orm(reply_by, ticket, dora_user, "It is on its way.")
    warning = eve.locator("#collision [data-warning=replied]")
    expect(warning).to_contain_text("Dora replied while you were writing", timeout=WAIT_MS)
    last_seen = eve.locator('#reply-form input[name="last_seen_message_id"]')
    expect(last_seen).to_have_value(str(first.pk))
    expect(eve.locator("#timeline")).not_to_contain_text("It is on its way.")
    # Dora's own reply refreshes her timeline without a warning.
    expect(dora.locator("#timeline")).to_contain_text("It is on its way.", timeout=WAIT_MS)
    expect(dora.locator("#collision [data-warning]")).to_have_count(0)

    # Eve chooses to see it: now it counts as seen.
    warning.get_by_role("button", name="Show their reply").click()
    expect(eve.locator("#timeline")).to_contain_text("It is on its way.", timeout=WAIT_MS)
    expect(last_seen).to_have_value(str(reply.pk))
    expect(warning).to_have_count(0)
    expect(eve.locator("#reply-text")).to_have_value("I am on it!")

    # Someone changes the ticket: both pages' forms are stale now.
    expect(eve.locator("#ticket-stale")).to_have_count(0)
    orm(ticket_change, ticket)
    expect(eve.locator("#ticket-stale")).to_contain_text("This ticket was changed by someone else", timeout=WAIT_MS)
    expect(dora.locator("#ticket-stale")).to_be_visible(timeout=WAIT_MS)

    # Eve leaves: Dora no longer sees her.
    eve.context.close()
    expect(dora.locator("#collision")).not_to_contain_text("Also viewing", timeout=WAIT_MS)
    assert dora.evaluate("window.__xss") is None
    dora.context.close()


def test_queue_keyboard_moves_opens_focuses_and_shows_the_help(desk, playwright_browser):
    def given():
        agent = AgentFactory()
        tickets = [TicketFactory(subject=f"Ticket {n}") for n in range(3)]
        return agent, [ticket.pk for ticket in reversed(tickets)]  # the queue shows the newest first

    agent, shown = orm(given)
    page = signed_in_page(playwright_browser, desk, agent)
    page.goto(f"{desk.url}/test-live/queue/")
    live(page)
    assert selected_ids(page) == []

    page.keyboard.press("j")
    assert selected_ids(page) == [str(shown[0])]
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")  # stays on the last
    assert selected_ids(page) == [str(shown[2])]
    page.keyboard.press("k")
    assert selected_ids(page) == [str(shown[1])]

    # In a field, the letters are text; Escape leaves the field and the shortcuts work again.
    page.keyboard.press("/")
    expect(page.locator("#queue-search")).to_be_focused()
    page.keyboard.type("jk?")
    expect(page.locator("#queue-search")).to_have_value("jk?")
    assert selected_ids(page) == [str(shown[1])]
    expect(page.locator("#keys-help")).not_to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(page.locator("#queue-search")).not_to_be_focused()
    # A modifier makes it someone else's key.
    page.keyboard.press("Control+j")
    assert selected_ids(page) == [str(shown[1])]

    # ? opens the help as a modal dialog; Escape closes it; the header's button opens it too.
    page.keyboard.press("?")
    expect(page.locator("#keys-help")).to_be_visible()
    assert page.evaluate("document.querySelector('#keys-help').matches(':modal')")
    page.keyboard.press("Escape")
    expect(page.locator("#keys-help")).to_be_hidden()
    page.locator("[data-keys-help]").click()
    expect(page.locator("#keys-help")).to_be_visible()
    page.locator("#keys-help").get_by_role("button", name="Close").click()
    expect(page.locator("#keys-help")).to_be_hidden()

    # Enter opens the selected ticket; there r, n, a, s focus their fields without typing the letter.
    page.locator("main").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{desk.url}/test-live/tickets/{shown[1]}/")
    live(page)
    for key, field in (("r", "#reply-text"), ("n", "#note-text"), ("a", "#id_assignee"), ("s", "#id_status")):
        page.locator("main").focus()
        page.keyboard.press(key)
        expect(page.locator(field)).to_be_focused()
    page.locator("main").focus()
    page.keyboard.press("r")
    expect(page.locator("#reply-text")).to_have_value("")
    page.context.close()


def test_queue_shows_new_tickets_live_keeps_the_selection_and_catches_up_after_a_reconnect(desk, playwright_browser):
    def given():
        agent = AgentFactory()
        tickets = [TicketFactory(subject=f"Old {n}") for n in range(2)]
        return agent, [ticket.pk for ticket in tickets]

    agent, (older, newer) = orm(given)
    page = signed_in_page(playwright_browser, desk, agent)
    page.goto(f"{desk.url}/test-live/queue/")
    live(page)
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert selected_ids(page) == [str(older)]

    arrived = orm(new_ticket, "Fresh question", is_published=True)
    rows = page.locator("[data-ticket-row]")
    expect(rows.first).to_have_attribute("data-ticket-id", str(arrived.pk), timeout=WAIT_MS)
    assert selected_ids(page) == [str(older)]  # the same ticket, now third

    # A push lost (none is sent for this one): nothing shows, until a reconnect catches up.
    missed = orm(new_ticket, "Missed while offline", is_published=False)
    page.wait_for_timeout(2500)  # longer than the refresh throttle: a refresh would have come by now
    expect(page.locator(f'[data-ticket-id="{missed.pk}"]')).to_have_count(0)
    page.evaluate("window.HelpdeskConsole.dropConnection()")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
    expect(page.locator("#live-status")).to_contain_text("reconnecting")
    live(page)
    expect(rows.first).to_have_attribute("data-ticket-id", str(missed.pk), timeout=WAIT_MS)
    assert selected_ids(page) == [str(older)]
    page.keyboard.press("k")
    assert selected_ids(page) == [str(newer)]
    page.context.close()


def test_on_the_console_pages_agents_see_each_other_and_the_queue_keys_open_a_ticket(desk, playwright_browser):
    """The same behaviour on the console's real queue and ticket pages (their contract ids, their templates)."""

    def given():
        dora = AgentFactory(profile__display_name="Dora")
        eric = AgentFactory(profile__display_name="Eric")
        message = MessageFactory(ticket=TicketFactory(subject="Real page question"), channel=ChannelFactory())
        return dora, eric, message.ticket

    dora_user, eric_user, ticket = orm(given)
    dora = signed_in_page(playwright_browser, desk, dora_user)
    eric = signed_in_page(playwright_browser, desk, eric_user)
    dora.goto(f"{desk.url}/console/queues/unassigned/")
    live(dora)
    dora.locator("main").focus()
    dora.keyboard.press("j")
    assert selected_ids(dora) == [str(ticket.pk)]
    dora.keyboard.press("Enter")
    dora.wait_for_url(f"{desk.url}/console/tickets/{ticket.pk}/")
    live(dora)
    eric.goto(f"{desk.url}/console/tickets/{ticket.pk}/")
    live(eric)
    expect(eric.locator("#collision")).to_contain_text("Also viewing: Dora", timeout=WAIT_MS)
    expect(dora.locator("#collision")).to_contain_text("Also viewing: Eric", timeout=WAIT_MS)
    dora.locator("main").focus()
    dora.keyboard.press("r")
    expect(dora.locator("#reply-text")).to_be_focused()
    dora.keyboard.type("On it")
    expect(eric.locator("#collision")).to_contain_text("Dora is typing", timeout=WAIT_MS)
    dora.context.close()
    eric.context.close()
