"""The agent console end to end, in a real browser (issue 6, "How it is shown").

An agent signs in through the login form, opens the unassigned queue, opens (from the keyboard) the ticket of a
customer who wrote by email, then by SMS, then in the chat; sees every message marked with its channel and the
context panel; replies by email (the reply arrives at a real SMTP peer, threaded on her email), adds a note and
solves the ticket. A second agent, in another browser context on the same ticket, sees the first as a viewer, is
seen typing, and is warned when the first replies meanwhile; their own reply then asks before sending. A message
made of HTML and script shows as text and runs nothing.

Everything is real: uvicorn serving helpdesk.asgi.application (pages, /ws/agent/, /static/), PostgreSQL, Redis
(the channel layer and presence), Debian's Chromium, an aiosmtpd SMTP server. Deliveries run in the server's
thread: the test settings make Celery eager, as the chat end-to-end test relies on too.
"""

import re
import time

import httpx
import pytest
from playwright.sync_api import expect
from twilio.request_validator import SIGNATURE_HEADER

from tests.channels_app.sms_fixtures import inbound_path, signature_for, twilio_payload
from tests.conftest import services_or_skip
from tests.e2e.conftest import (
    CUSTOMER_EMAIL,
    EMAIL_MESSAGE_ID,
    EMAIL_SUBJECT,
    EMAIL_TEXT,
    SMS_TEXT,
    XSS_TEXT,
    console_login,
    orm,
)
from tickets.models import Message, Ticket

WAIT_MS = 15_000  # how long a browser assertion waits for something to appear (it returns as soon as it does)
REPLY_TEXT = "Your lamp left our warehouse this morning; you will have it by Thursday."
NOTE_TEXT = "@carl the courier confirmed the new date, please follow up Thursday."
CARL_DRAFT = "Sorry for the delay, let me check"
NEW_CUSTOMER_PHONE = "+14155550177"
NEW_SMS_SID = "SM00000000000000000000000000e2e002"


@pytest.fixture(autouse=True)
def _services():
    # Presence and the live events go through Redis; the queues' search through PostgreSQL.
    services_or_skip(need_postgres=True, need_redis=True)


def wait_for_mail(smtp, count: int, *, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while len(smtp.received) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(smtp.received) == count, f"the SMTP peer received {len(smtp.received)} message(s), not {count}"


def blur(page) -> None:
    """Leave any field, so single-key shortcuts apply (they do nothing while typing in a field)."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


def timeline_item(page, message_id: int):
    return page.locator(f"#timeline li[data-message-id='{message_id}']")


def test_an_agent_answers_a_customer_who_wrote_on_three_channels(console_story, smtp, browser_contexts):
    story = console_story
    ticket_id = story.ticket.pk
    bea_context = browser_contexts()
    bea = bea_context.new_page()

    # Given Bea signs in through the login form
    console_login(bea, desk=story.desk, username="bea")

    # When she opens the unassigned queue, the customer's ticket is there, and the sidebar counts it
    bea.locator("a[href$='/console/queues/unassigned/']").first.click()
    bea.wait_for_url(re.compile(r"/console/queues/unassigned/"))
    row = bea.locator(f"#queue-table [data-ticket-row][data-ticket-id='{ticket_id}']")
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_contain_text(EMAIL_SUBJECT)
    expect(bea.locator("#queue-table [data-ticket-row]")).to_have_count(1)
    expect(bea.locator(".queue-count[data-queue='unassigned']")).to_have_text(re.compile(r"^\D*1\D*$"))

    # And opens it from the keyboard: j selects the row, Enter opens it
    blur(bea)
    bea.keyboard.press("j")
    expect(row).to_have_attribute("aria-selected", "true")
    bea.keyboard.press("Enter")
    bea.wait_for_url(re.compile(rf"/console/tickets/{ticket_id}/$"))

    # Then she sees every message, each marked with its channel
    email_item = timeline_item(bea, story.email_message.pk)
    sms_item = timeline_item(bea, story.sms_message.pk)
    chat_item = timeline_item(bea, story.chat_message.pk)
    expect(email_item).to_have_attribute("data-channel", "email", timeout=WAIT_MS)
    expect(email_item).to_contain_text(EMAIL_TEXT)
    expect(email_item.locator(".badge-email")).to_be_visible()
    expect(sms_item).to_have_attribute("data-channel", "sms")
    expect(sms_item).to_contain_text(SMS_TEXT)
    expect(sms_item.locator(".badge-sms")).to_be_visible()
    expect(chat_item).to_have_attribute("data-channel", "chat")
    expect(chat_item.locator(".badge-chat")).to_be_visible()

    # And the message made of HTML and script is shown as text, and nothing of it runs
    expect(chat_item).to_contain_text(XSS_TEXT)
    assert bea.locator("#timeline img, #timeline script").count() == 0
    assert bea_context.problems == []

    # And the context panel tells who she is and what she did
    panel = bea.locator("#context-panel")
    expect(panel).to_contain_text("Ann Lee")
    expect(panel).to_contain_text("Enterprise")
    expect(panel).to_contain_text(CUSTOMER_EMAIL)
    expect(panel).to_contain_text("A-1042")  # the order
    expect(panel).to_contain_text(re.compile(r"cart", re.IGNORECASE))

    # When Carl, in his own browser, opens the same ticket, each sees the other as a viewer
    carl_context = browser_contexts()
    carl = carl_context.new_page()
    console_login(carl, desk=story.desk, username="carl", next_path=f"/console/tickets/{ticket_id}/")
    carl.wait_for_url(re.compile(rf"/console/tickets/{ticket_id}/$"))
    expect(bea.locator("#collision")).to_contain_text("Carl", timeout=WAIT_MS)
    expect(carl.locator("#collision")).to_contain_text("Bea", timeout=WAIT_MS)

    # And when Carl starts a reply (r focuses the reply box), Bea sees him typing
    blur(carl)
    carl.keyboard.press("r")
    expect(carl.locator("#reply-text")).to_be_focused()
    carl.keyboard.type(CARL_DRAFT)
    expect(bea.locator("#collision")).to_contain_text(re.compile(r"Carl.*typing", re.IGNORECASE), timeout=WAIT_MS)

    # When Bea replies by email meanwhile
    blur(bea)
    bea.keyboard.press("r")
    expect(bea.locator("#reply-text")).to_be_focused()
    # the channel picker offers the one she last wrote on (the chat) first; Bea answers by email
    expect(bea.locator("#reply-channel")).to_have_value(str(story.chat.pk))
    bea.select_option("#reply-channel", value=str(story.email.pk))
    bea.locator("#reply-text").fill(REPLY_TEXT)
    bea.locator("#reply-form").get_by_role("button", name="Send reply").click()

    # Then her reply is on the timeline, on the email channel
    reply_item = bea.locator("#timeline li[data-channel='email']", has_text=REPLY_TEXT)
    expect(reply_item).to_have_count(1, timeout=WAIT_MS)
    reply = orm(lambda: Message.objects.get(ticket_id=ticket_id, direction=Message.Direction.OUTBOUND))
    assert (reply.text, reply.channel_id, reply.author_id) == (REPLY_TEXT, story.email.pk, story.bea.pk)

    # And it arrives at the SMTP peer, addressed to her email, threaded on her message, with the ticket's reference
    wait_for_mail(smtp, 1)
    received = smtp.received[0]
    assert received.rcpt_tos == [CUSTOMER_EMAIL]
    assert received.message["Subject"] == f"Re: {EMAIL_SUBJECT} [#{ticket_id}]"
    assert received.message["In-Reply-To"] == EMAIL_MESSAGE_ID
    assert REPLY_TEXT in received.message.get_body(("plain",)).get_content()
    assert "Bea" in str(received.message["From"])

    # And Carl, still typing, is warned live that Bea replied, and his draft is kept
    expect(carl.locator("#collision")).to_contain_text(re.compile(r"Bea.*repl", re.IGNORECASE), timeout=WAIT_MS)
    expect(carl.locator("#reply-text")).to_have_value(CARL_DRAFT)

    # When Carl sends anyway from the page he loaded before her reply, the desk asks first and sends nothing
    carl.locator("#reply-form").get_by_role("button", name="Send reply").click()
    warning = carl.locator("#stale-reply")
    expect(warning).to_contain_text(REPLY_TEXT, timeout=WAIT_MS)  # the reply he had not seen, and whose it is
    expect(warning).to_contain_text("Bea")
    expect(carl.locator("#reply-form").get_by_role("button", name="Send anyway")).to_be_visible()
    expect(carl.locator("#reply-text")).to_have_value(CARL_DRAFT)
    assert orm(lambda: Message.objects.filter(ticket_id=ticket_id, direction=Message.Direction.OUTBOUND).count()) == 1
    assert len(smtp.received) == 1

    # When Bea adds an internal note (n), it is on the timeline as a note and goes to no one
    blur(bea)
    bea.keyboard.press("n")
    expect(bea.locator("#note-text")).to_be_focused()
    bea.keyboard.type(NOTE_TEXT)
    bea.locator("#note-form").get_by_role("button", name="Add note").click()
    expect(bea.locator("#timeline li[data-channel='note']", has_text=NOTE_TEXT)).to_have_count(1, timeout=WAIT_MS)
    note = orm(lambda: Message.objects.get(ticket_id=ticket_id, direction=Message.Direction.NOTE))
    assert (note.text, note.author_id) == (NOTE_TEXT, story.bea.pk)

    # And when she sets the status to solved (s) and saves, the ticket is solved
    blur(bea)
    bea.keyboard.press("s")
    expect(bea.locator("#id_status")).to_be_focused()
    bea.select_option("#id_status", value=Ticket.Status.SOLVED)
    with bea.expect_response(lambda response: response.url.endswith(f"/tickets/{ticket_id}/update/")) as answer:
        bea.locator("#ticket-form").get_by_role("button", name="Save").click()
    assert answer.value.status == 200
    expect(bea.locator("#update-conflict")).to_have_count(0)
    expect(bea.locator("#id_status")).to_have_value(Ticket.Status.SOLVED)
    ticket = orm(lambda: Ticket.objects.get(pk=ticket_id))
    assert (ticket.status, ticket.assignee_id) == (Ticket.Status.SOLVED, story.bea.pk)

    # Nothing sent more than the one reply (deliveries run before each answer: Celery is eager here); no page raised
    # a script error or opened a dialog
    assert len(smtp.received) == 1
    assert bea_context.problems == []
    assert carl_context.problems == []


def test_a_new_ticket_appears_in_the_queue_without_a_reload(console_story, browser_contexts):
    story = console_story
    context = browser_contexts()
    page = context.new_page()
    console_login(page, desk=story.desk, username="bea", next_path="/console/queues/unassigned/")
    page.wait_for_url(re.compile(r"/console/queues/unassigned/"))
    expect(page.locator("#queue-table [data-ticket-row]")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)

    # When a new customer texts the shop: Twilio's signed webhook, on the live server, as in production
    path = inbound_path(story.sms)
    params = twilio_payload(
        "sms",
        From=NEW_CUSTOMER_PHONE,
        Body="Refund for A-2001 please",
        MessageSid=NEW_SMS_SID,
        SmsMessageSid=NEW_SMS_SID,
        SmsSid=NEW_SMS_SID,
    )
    response = httpx.post(
        story.desk.url + path,
        data=params,
        headers={SIGNATURE_HEADER: signature_for(story.desk.url + path, params)},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    new_ticket = orm(lambda: Message.objects.select_related("ticket").get(provider_id=NEW_SMS_SID).ticket)

    # Then the queue shows the new ticket without a reload, with its count
    new_row = page.locator(f"#queue-table [data-ticket-row][data-ticket-id='{new_ticket.pk}']")
    expect(new_row).to_be_visible(timeout=WAIT_MS)
    expect(new_row).to_contain_text("Refund for A-2001")
    expect(page.locator(".queue-count[data-queue='unassigned']")).to_have_text(
        re.compile(r"^\D*2\D*$"), timeout=WAIT_MS
    )
    assert context.problems == []
