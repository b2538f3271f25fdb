"""Live chat end to end, in a real browser: a shop's page (another origin) embeds the widget with its one script
tag; the visitor chats with an agent whose websocket sees the messages live and who replies over the REST API; the
visitor sees replies without reloading, keeps the history over a reload, sees HTML as text, and, after choosing to
continue by email, gets the agent's next reply at a real SMTP peer.

Everything is real: uvicorn serving helpdesk.asgi.application (HTTP, websockets, /static/), PostgreSQL or the
configured database, the configured channel layer, Debian's Chromium, an aiosmtpd SMTP server.
"""

import json
import re
import time

import httpx
import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client
from playwright.sync_api import expect
from websockets.sync.client import connect as websocket_connect

from agents.services import api_token_create
from channels_app.adapters.base import PURPOSE_INCIDENT
from channels_app.models import Channel
from chat.channel_cache import chat_channel_cache_clear
from chat.embed import widget_script_url
from chat.models import ChatVisitor
from chat.tokens import identity_hmac_compute
from outreach.services.send import outreach_send
from outreach.services.templates import outreach_template_create
from tests.e2e.conftest import orm
from tests.factories import AgentFactory, ChannelFactory
from tickets.models import Message

SHOP_NAME = "Example Shop"
VISITOR_EMAIL = "ann@shop.example"
MAX_CHARS = 300
WAIT_MS = 15_000  # how long a browser assertion waits for something to appear (it returns as soon as it does)
XSS_FROM_VISITOR = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
XSS_FROM_AGENT = "<b>Bold?</b><img src=y onerror=\"window.__xss='agent'\">"
HOSTILE_CSS = "button,div{display:none!important} *{color:rgb(255,0,0)!important;font-size:40px!important}"


@pytest.fixture
def chat_settings(settings):
    # A small limit, so the "too long" error needs no 5,000-character message. settings is process-wide: the
    # server thread answers with it too.
    settings.HELPDESK = {**settings.HELPDESK, "CHAT_MAX_MESSAGE_CHARS": MAX_CHARS}
    return settings


@pytest.fixture
def desk(live_desk, host_site, smtp, chat_settings):
    """A chat channel embedded on the host site, its email channel (SMTP to the peer), and an agent with a browser
    session (for the agent websocket) and a personal API token (for replying)."""
    # The desk is where the test server runs: its absolute links (attachments) and the agent's origin say so.
    chat_settings.PUBLIC_BASE_URL = live_desk.url
    chat_settings.CSRF_TRUSTED_ORIGINS = [live_desk.url]
    email_channel = ChannelFactory(
        kind=Channel.Kind.EMAIL,
        name="Shop email",
        address="support@desk.example",
        continue_open_ticket=False,
        settings={
            "email_backend": "django.core.mail.backends.smtp.EmailBackend",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
        },
    )
    chat_channel = ChannelFactory(
        kind=Channel.Kind.CHAT,
        provider="widget",
        name=SHOP_NAME,
        settings={
            "allowed_origins": [host_site.origin],
            "color": "#7c3aed",
            "greeting": "Hi! Ask us anything.",
            "expected_reply_minutes": 5,
            "email_channel_id": email_channel.pk,
            "texts": {"composerPlaceholder": "Ask the shop…"},
        },
        secrets={"identity_secret": "shop-identity-secret"},
    )
    agent = AgentFactory(username="bea", profile__display_name="Bea")
    browser_session = Client()
    browser_session.force_login(agent)
    host_site.page = render_to_string(
        "chat/demo.html",
        {"public_key": chat_channel.public_key, "widget_src": widget_script_url(base_url=live_desk.url)},
    ).encode()
    return {
        "url": live_desk.url,
        "ws_url": live_desk.ws_url,
        "host": host_site,
        "smtp": smtp,
        "chat": chat_channel,
        "email": email_channel,
        "agent_token": api_token_create(name="bea", scopes=[], user=agent).secret,
        "agent_cookie": f"{settings.SESSION_COOKIE_NAME}={browser_session.cookies[settings.SESSION_COOKIE_NAME].value}",
    }


class AgentSocket:
    """The agent side of the live connection, as the console will hold it: /ws/agent/ with the session cookie, from
    the desk's own origin."""

    def __init__(self, socket) -> None:
        self.socket = socket
        self.seen: list[dict] = []

    @staticmethod
    def connect(desk):
        return websocket_connect(
            desk["ws_url"] + "/ws/agent/",
            additional_headers={"Cookie": desk["agent_cookie"], "Origin": settings.PUBLIC_BASE_URL},
            open_timeout=10,
        )

    def send(self, event: dict) -> None:
        self.socket.send(json.dumps(event))

    def wait_for(self, matches, *, timeout: float = 15) -> dict:
        """The first event (already received or arriving within ``timeout``) for which ``matches`` is true."""
        for event in self.seen:
            if matches(event):
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = json.loads(self.socket.recv(timeout=max(0.05, deadline - time.monotonic())))
            except TimeoutError:
                break
            self.seen.append(event)
            if matches(event):
                return event
        raise AssertionError(f"no matching event; the agent socket saw {self.seen!r}")


def agent_reply(desk, ticket_id: int, text: str) -> dict:
    response = httpx.post(
        f"{desk['url']}/api/v1/tickets/{ticket_id}/replies",
        json={"text": text},
        headers={"Authorization": f"Bearer {desk['agent_token']}"},
        timeout=20,
    )
    assert response.status_code == 201, response.text
    return response.json()


def shadow(page, script: str):
    """Evaluate ``script`` with ``root`` bound to the widget's shadow root."""
    return page.evaluate(
        f"() => {{ const root = document.querySelector('[data-helpdesk-chat]').shadowRoot; {script} }}"
    )


def bubble_texts(page, side: str) -> list[str]:
    return shadow(page, f"return [...root.querySelectorAll('.msg.{side} .text')].map(node => node.textContent);")


def open_widget(page):
    page.get_by_role("button", name=re.compile("^Chat with us")).click()
    expect(page.get_by_role("dialog", name=SHOP_NAME)).to_be_visible()


def test_a_visitor_chats_with_an_agent_live_then_continues_by_email(desk, playwright_browser):
    with AgentSocket.connect(desk) as socket:
        run_the_conversation(desk, AgentSocket(socket), playwright_browser)


def run_the_conversation(desk, agent: AgentSocket, browser):
    page = browser.new_page(locale="en-US")
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))

    # Given the shop's page, with the widget's script tag and styles that would break an unprotected widget
    page.goto(desk["host"].origin + "/")
    launcher = page.get_by_role("button", name="Chat with us")
    expect(launcher).to_be_visible(timeout=WAIT_MS)
    page.add_style_tag(content=HOSTILE_CSS)
    expect(launcher).to_be_visible()
    # the script came from the desk's real /static/ URL, not from the host site
    assert shadow(page, "return getComputedStyle(root.host).position;") == "fixed"

    # When the visitor opens it: a labelled dialog with the channel's name and presence, focus in the composer
    open_widget(page)
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("heading", name=SHOP_NAME, exact=True)).to_be_visible()
    expect(page.get_by_text("We're online · Usually replies in 5 min")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Hi! Ask us anything.")).to_be_visible()
    composer = page.get_by_role("textbox", name="Your message")
    expect(composer).to_be_focused()
    expect(composer).to_have_attribute("placeholder", "Ask the shop…")  # the channel's own text
    expect(page.get_by_role("log", name="Conversation")).to_have_attribute("aria-live", "polite")

    # And writes two lines (Shift+Enter) and sends with Enter
    composer.type("Where is my order A-1?")
    composer.press("Shift+Enter")
    composer.type("It was due Monday.")
    composer.press("Enter")
    first_text = "Where is my order A-1?\nIt was due Monday."

    # Then the agent's socket gets it live, and the widget shows it as sent
    event = agent.wait_for(lambda e: e.get("type") == "message" and e["message"]["text"] == first_text)
    ticket_id = event["message"]["ticket_id"]
    expect(page.locator(".msg.in:not(.pending) .text")).to_have_count(1, timeout=WAIT_MS)
    assert bubble_texts(page, "in") == [first_text]
    assert composer.input_value() == ""
    visitor = orm(lambda: ChatVisitor.objects.get(channel=desk["chat"]))
    assert visitor.origin == desk["host"].origin

    # The host page's CSS did not reach inside: the visitor's bubble keeps the widget's colours and size
    style = shadow(
        page, "const s = getComputedStyle(root.querySelector('.msg.in .bubble')); return [s.color, s.fontSize];"
    )
    assert style == ["rgb(255, 255, 255)", "14px"]
    assert shadow(page, "return getComputedStyle(root.host).getPropertyValue('--accent').trim();") == "#7c3aed"

    # When the agent opens the ticket, they see the visitor typing
    agent.send({"type": "subscribe", "ticket_id": ticket_id})
    agent.wait_for(lambda e: e.get("type") == "viewers" and e["ticket_id"] == ticket_id)
    composer.type("Hel")
    agent.wait_for(lambda e: e.get("type") == "typing" and e.get("who") == "visitor" and e.get("is_typing") is True)
    composer.fill("")

    # And when the agent types, the visitor sees it
    agent.send({"type": "typing", "ticket_id": ticket_id, "is_typing": True})
    expect(page.get_by_text("Bea is typing…")).to_be_visible(timeout=WAIT_MS)

    # And replies over the REST API: the visitor sees the reply without reloading, on the chat channel
    reply = agent_reply(desk, ticket_id, "It ships today, sorry for the wait.")
    expect(page.locator(".msg.out .text")).to_have_text(["It ships today, sorry for the wait."], timeout=WAIT_MS)
    expect(page.get_by_text("Bea is typing…")).to_have_count(0)
    # the open widget reports the reply as read
    agent.wait_for(lambda e: e.get("type") == "read" and e.get("who") == "visitor" and e["up_to"] >= reply["id"])
    assert orm(lambda: Message.objects.get(pk=reply["id"]).channel_id) == desk["chat"].pk

    # When a message longer than the limit is sent, the widget says so and keeps the text
    composer.fill("x" * (MAX_CHARS + 1))
    composer.press("Enter")
    expect(page.get_by_role("alert")).to_have_text(
        f"Your message is too long (at most {MAX_CHARS} characters).", timeout=WAIT_MS
    )
    assert composer.input_value() == "x" * (MAX_CHARS + 1)
    assert orm(lambda: Message.objects.filter(ticket_id=ticket_id).count()) == 2

    # When the visitor sends HTML and the agent answers with HTML, both are shown as text and nothing runs
    composer.fill(XSS_FROM_VISITOR)
    composer.press("Enter")
    agent.wait_for(lambda e: e.get("type") == "message" and e["message"]["text"] == XSS_FROM_VISITOR)
    expect(page.get_by_role("alert")).to_be_hidden()
    agent_reply(desk, ticket_id, XSS_FROM_AGENT)
    expect(page.locator(".msg.out .text")).to_have_count(2, timeout=WAIT_MS)
    assert bubble_texts(page, "in") == [first_text, XSS_FROM_VISITOR]
    assert bubble_texts(page, "out") == ["It ships today, sorry for the wait.", XSS_FROM_AGENT]
    assert shadow(page, "return root.querySelectorAll('.log img, .log script, .log b').length;") == 0
    assert page.evaluate("window.__xss") is None

    # When the page reloads, the history is still there (the visitor token is kept by the browser)
    page.reload()
    open_widget(page)
    expect(page.locator(".msg.out .text")).to_have_count(2, timeout=WAIT_MS)
    assert bubble_texts(page, "in") == [first_text, XSS_FROM_VISITOR]
    assert bubble_texts(page, "out") == ["It ships today, sorry for the wait.", XSS_FROM_AGENT]
    assert orm(lambda: ChatVisitor.objects.filter(channel=desk["chat"]).count()) == 1

    # Escape closes the panel and gives focus back to the launcher
    page.get_by_role("textbox", name="Your message").press("Escape")
    expect(page.get_by_role("dialog", name=SHOP_NAME)).to_be_hidden()
    expect(page.get_by_role("button", name="Chat with us")).to_be_focused()

    # A reply that arrives while the panel is closed shows on the launcher as unread
    agent_reply(desk, ticket_id, "Anything else?")
    expect(page.get_by_role("button", name="Chat with us (1 unread)")).to_be_visible(timeout=WAIT_MS)

    # When the visitor chooses to continue by email and leaves their address
    open_widget(page)
    page.get_by_role("button", name="Continue by email").click()
    email_box = page.get_by_role("textbox", name="Your email")
    expect(email_box).to_be_focused()
    email_box.fill(VISITOR_EMAIL)
    page.get_by_role("button", name="Email me the replies").click()
    expect(page.get_by_role("status")).to_have_text(f"Thanks! We'll reply to {VISITOR_EMAIL}.", timeout=WAIT_MS)
    visitor = orm(lambda: ChatVisitor.objects.get(channel=desk["chat"]))
    assert visitor.left_at is not None
    assert visitor.email == VISITOR_EMAIL

    # Then the agent's next reply goes out by email, to the address the visitor left, at the real SMTP peer
    later = agent_reply(desk, ticket_id, "Your parcel was handed to the courier.")
    smtp = desk["smtp"]
    deadline = time.monotonic() + 15
    while not smtp.received and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(smtp.received) == 1
    received = smtp.received[0]
    assert received.rcpt_tos == [VISITOR_EMAIL]
    assert [address.addr_spec for address in received.message["To"].addresses] == [VISITOR_EMAIL]
    assert "Your parcel was handed to the courier." in received.message.get_body(("plain",)).get_content()
    assert orm(lambda: Message.objects.get(pk=later["id"]).channel_id) == desk["email"].pk

    assert page_errors == []
    page.close()


def test_the_widget_speaks_the_browsers_language(desk, playwright_browser):
    # Given a French browser on the shop's page
    context = playwright_browser.new_context(locale="fr-FR")
    page = context.new_page()
    page.goto(desk["host"].origin + "/")

    # Then the widget's own texts are French, and the channel's override still applies
    page.get_by_role("button", name="Discuter avec nous").click(timeout=WAIT_MS)
    expect(page.get_by_role("dialog", name=SHOP_NAME)).to_be_visible()
    composer = page.get_by_role("textbox", name="Votre message")
    expect(composer).to_be_focused()
    expect(composer).to_have_attribute("placeholder", "Ask the shop…")
    expect(page.get_by_role("button", name="Joindre un fichier")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Discuter avec nous")).to_be_focused()
    context.close()


def test_the_widget_stays_away_from_a_site_not_on_the_allowed_list(desk, playwright_browser):
    # Given a channel that allows another site only
    orm(
        lambda: Channel.objects.filter(pk=desk["chat"].pk).update(
            settings={**desk["chat"].settings, "allowed_origins": ["https://elsewhere.example"]}
        )
    )
    chat_channel_cache_clear()  # the server runs in this process; a queryset update sends no save signal
    page = playwright_browser.new_page()

    # When the shop's page loads the widget, the desk refuses its configuration request
    with page.expect_console_message(lambda message: "Helpdesk chat: not started" in message.text, timeout=WAIT_MS):
        page.goto(desk["host"].origin + "/")

    # Then no widget is shown and no visitor exists
    assert page.evaluate("document.querySelectorAll('[data-helpdesk-chat]').length") == 0
    assert orm(lambda: ChatVisitor.objects.count()) == 0
    page.close()


# A 1x1 PNG, so the widget has a real image to fetch (with the visitor token) and show.
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cf"
    "f01f0005000201ffa3e1d5d20000000049454e44ae426082"
)


def test_the_visitor_sends_files_within_the_limit(desk, playwright_browser):
    page = playwright_browser.new_page(locale="en-US")
    page.goto(desk["host"].origin + "/")
    open_widget(page)
    expect(page.get_by_role("button", name="Attach a file")).to_be_visible()
    file_input = page.locator("[data-helpdesk-chat] input[type=file]")
    max_bytes = settings.HELPDESK["CHAT_MAX_UPLOAD_BYTES"]

    # When the visitor attaches an image, it is sent and shown, fetched from the desk with their token
    file_input.set_input_files(files=[{"name": "parcel.png", "mimeType": "image/png", "buffer": PNG_1X1}])
    image = page.locator(".msg.in img[alt='parcel.png']")
    expect(image).to_have_count(1, timeout=WAIT_MS)
    page.wait_for_function(
        "() => { const img = document.querySelector('[data-helpdesk-chat]').shadowRoot.querySelector('.msg.in img');"
        " return img && img.complete && img.naturalWidth === 1 && img.src.startsWith('blob:'); }",
        timeout=WAIT_MS,
    )
    stored = orm(
        lambda: list(Message.objects.filter(channel=desk["chat"]).values_list("attachments__filename", flat=True))
    )
    assert stored == ["parcel.png"]

    # When a file is over the channel's limit, the widget says so and sends nothing
    file_input.set_input_files(
        files=[{"name": "huge.bin", "mimeType": "application/octet-stream", "buffer": b"\0" * (max_bytes + 1)}]
    )
    expect(page.get_by_role("alert")).to_have_text(re.compile(r"^This file is too large \(at most [\d.]+ (KB|MB)\)\.$"))
    assert orm(lambda: Message.objects.filter(channel=desk["chat"]).count()) == 1
    page.close()


def test_the_pre_chat_form_asks_who_the_visitor_is(desk, playwright_browser):
    # Given a channel with the pre-chat form
    orm(
        lambda: Channel.objects.filter(pk=desk["chat"].pk).update(
            settings={**desk["chat"].settings, "pre_chat_form": True}
        )
    )
    chat_channel_cache_clear()  # the server runs in this process; a queryset update sends no save signal
    page = playwright_browser.new_page(locale="en-US")
    page.goto(desk["host"].origin + "/")

    # When the visitor opens the widget, the form comes first, focused on the name; a bad email is refused
    open_widget(page)
    name = page.get_by_role("textbox", name="Name")
    expect(name).to_be_focused()
    expect(page.get_by_role("textbox", name="Your message")).to_be_hidden()
    name.fill("Ann Lee")
    page.get_by_role("textbox", name="Email", exact=True).fill("not-an-email")
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("alert")).to_have_text("Please enter a valid email address.")
    assert orm(lambda: ChatVisitor.objects.count()) == 0

    # And with a good one the chat starts, and the visitor is known by the name and (unverified) email given
    page.get_by_role("textbox", name="Email", exact=True).fill(VISITOR_EMAIL)
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("textbox", name="Your message")).to_be_focused(timeout=WAIT_MS)
    visitor = orm(lambda: ChatVisitor.objects.get(channel=desk["chat"]))
    assert (visitor.name, visitor.email, visitor.is_verified) == ("Ann Lee", VISITOR_EMAIL, False)
    page.close()


@pytest.mark.parametrize("hmac_is_right", [True, False])
def test_a_host_site_vouches_for_its_logged_in_user(desk, hmac_is_right, playwright_browser):
    # Given the shop's page for its logged-in user 42, with the HMAC its server computed (or a forged one)
    right = identity_hmac_compute(secret="shop-identity-secret", user_id="42")
    user = {"id": "42", "email": "ann@shop.example", "name": "Ann", "hmac": right if hmac_is_right else "0" * 64}
    desk["host"].page = render_to_string(
        "chat/demo.html",
        {
            "public_key": desk["chat"].public_key,
            "widget_src": widget_script_url(base_url=desk["url"]),
            "user_identity": user,
        },
    ).encode()
    page = playwright_browser.new_page(locale="en-US")
    page.goto(desk["host"].origin + "/")

    # When the visitor opens the widget
    open_widget(page)

    if hmac_is_right:
        # Then the visitor is the shop's user 42, verified
        composer = page.get_by_role("textbox", name="Your message")
        composer.fill("Hello from my account")
        composer.press("Enter")
        expect(page.locator(".msg.in:not(.pending) .text")).to_have_text(["Hello from my account"], timeout=WAIT_MS)
        visitor = orm(lambda: ChatVisitor.objects.get(channel=desk["chat"]))
        assert (visitor.external_id, visitor.is_verified, visitor.email) == ("42", True, "ann@shop.example")
    else:
        # Then the desk refuses, the widget says so, and no visitor exists
        expect(page.get_by_role("alert")).to_have_text("The chat is not available on this page.", timeout=WAIT_MS)
        assert orm(lambda: ChatVisitor.objects.count()) == 0
    page.close()


def test_a_visitor_over_the_message_rate_is_told_to_wait(desk, chat_settings, playwright_browser):
    # Given a limit of two messages a minute
    chat_settings.HELPDESK = {**chat_settings.HELPDESK, "CHAT_VISITOR_MESSAGES_PER_MINUTE": 2}
    page = playwright_browser.new_page(locale="en-US")
    page.goto(desk["host"].origin + "/")
    open_widget(page)
    composer = page.get_by_role("textbox", name="Your message")
    for text in ("one", "two"):
        composer.fill(text)
        composer.press("Enter")
        expect(page.locator(".msg.in:not(.pending) .text").last).to_have_text(text, timeout=WAIT_MS)

    # When a third one is sent within the minute, the widget says how long to wait and keeps the text
    composer.fill("three")
    composer.press("Enter")

    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"^You're sending messages too fast\. Please wait \d+ seconds\.$"), timeout=WAIT_MS
    )
    assert composer.input_value() == "three"
    assert bubble_texts(page, "in") == ["one", "two"]
    assert orm(lambda: Message.objects.filter(channel=desk["chat"]).count()) == 2
    page.close()


def test_after_a_dropped_connection_the_widget_catches_up_over_rest(desk, playwright_browser):
    # Given the visitor's websocket passes through a switch the test controls (Playwright's websocket routing)
    sockets = []
    desk_is_reachable = {"value": True}

    def route(socket):
        if not desk_is_reachable["value"]:
            socket.close(code=1011, reason="down")
            return
        sockets.append((socket, socket.connect_to_server()))

    page = playwright_browser.new_page(locale="en-US")
    page.route_web_socket(re.compile(r"/chat/ws/"), route)
    page.goto(desk["host"].origin + "/")
    open_widget(page)
    # The widget opens its websocket after the session starts: wait until it has gone through the switch.
    for _ in range(100):
        if sockets:
            break
        page.wait_for_timeout(100)
    with AgentSocket.connect(desk) as socket:
        agent = AgentSocket(socket)
        composer = page.get_by_role("textbox", name="Your message")
        composer.fill("Are you there?")
        composer.press("Enter")
        ticket_id = agent.wait_for(lambda e: e.get("type") == "message")["message"]["ticket_id"]
        assert len(sockets) == 1

    # When the connection drops and stays down, the widget says it is reconnecting
    desk_is_reachable["value"] = False
    page_side, server_side = sockets[0]
    server_side.close()
    page_side.close(code=1001, reason="gone")
    expect(page.get_by_role("status")).to_have_text("Reconnecting…", timeout=WAIT_MS)

    # And the agent replies meanwhile: no connection gets that push
    agent_reply(desk, ticket_id, "Yes, sorry, we were away.")
    desk_is_reachable["value"] = True

    # Then, once reconnected, the widget fetches what it missed after its last message id, once
    expect(page.locator(".msg.out .text")).to_have_text(["Yes, sorry, we were away."], timeout=30_000)
    expect(page.get_by_role("status")).to_be_hidden(timeout=WAIT_MS)
    assert bubble_texts(page, "in") == ["Are you there?"]
    page.close()


def send_outage_notice(desk) -> str:
    """The desk writes first to the widget's visitor (an outage notice), through the outreach service."""
    visitor = ChatVisitor.objects.select_related("customer").get(channel=desk["chat"])
    template = outreach_template_create(
        name="Checkout outage",
        purpose=PURPOSE_INCIDENT,
        chat_text="{{ incident.title }}: {{ incident.update }}",
    )
    result = outreach_send(
        customer=visitor.customer,
        purpose=PURPOSE_INCIDENT,
        template=template,
        context={"incident.title": "Checkout is slow", "incident.update": "No order is lost; we are on it."},
        channel_preference=[desk["chat"]],
        key="e2e-incident:1",
    )
    return result.status


def test_a_notice_the_desk_writes_first_shows_as_a_card_in_the_widget(desk, playwright_browser, tmp_path):
    # Given a visitor on the widget who has written once
    page = playwright_browser.new_page(locale="en-US", viewport={"width": 1024, "height": 800})
    page.goto(desk["host"].origin + "/")
    open_widget(page)
    composer = page.get_by_role("textbox", name="Your message")
    composer.fill("Is checkout working?")
    composer.press("Enter")
    expect(page.locator(".msg.in .text")).to_have_text(["Is checkout working?"], timeout=WAIT_MS)

    # When the desk sends an outage notice while they are on the widget
    assert orm(send_outage_notice, desk) == "sent"

    # Then it arrives live as a card labelled with its purpose, its text as text
    card = page.locator(".msg.out.card")
    expect(card.locator(".card-title")).to_have_text("Service status", timeout=WAIT_MS)
    expect(card.locator(".text")).to_have_text("Checkout is slow: No order is lost; we are on it.")
    page.screenshot(path=str(tmp_path / "widget-card-1024.png"))
    page.close()
