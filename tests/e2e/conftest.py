"""End-to-end fixtures: the real ASGI application under uvicorn on a loopback port, a host site on another port
(another origin, as a shop's website is), and Debian's Chromium driven by Playwright.

Playwright's sync API keeps an asyncio loop running in the test's thread, and Django refuses synchronous ORM
calls in a thread with a running loop. So the browser is started last (after the database and data fixtures) and
stopped first, and test bodies reach the ORM through ``orm(...)``, which runs it in a thread of its own.
"""

import http.server
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import uvicorn
from django.contrib.auth.models import User
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections
from django.utils import timezone

from channels_app.models import Channel
from channels_app.types import InboundIdentity, InboundMessage
from customers.models import Customer
from customers.services import customer_identity_add
from customers.types import IdentityInput
from realtime.frames import SERVER_MAX_FRAME_BYTES
from tests.channels_app.sms_fixtures import sms_channel_create
from tests.channels_app.smtp_peer import free_port, smtp  # noqa: F401  (the real SMTP peer fixture)
from tests.factories import AdminFactory, AgentFactory, ChannelFactory, ContextEventFactory
from tickets.models import Message, Ticket
from tickets.services.ingest import message_ingest

CHROMIUM = Path("/usr/bin/chromium")


def orm(function: Callable, *args, **kwargs):
    """Run ``function`` (ORM code) in a fresh thread, outside Playwright's running event loop; close its database
    connection there, so none is left open when the test database is flushed."""

    def call():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


@dataclass
class LiveDesk:
    url: str  # http://127.0.0.1:<port>, no trailing slash

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


@pytest.fixture
def live_desk(transactional_db):
    """helpdesk.asgi.application (HTTP and websockets) served by uvicorn in a background thread. Static files are
    served at their real /static/ URLs by Django's staticfiles handler (what runserver does; whitenoise serves
    the collected files in production)."""
    from helpdesk.asgi import application

    port = free_port()
    config = uvicorn.Config(
        ASGIStaticFilesHandler(application),
        host="127.0.0.1",
        port=port,
        lifespan="off",
        ws_per_message_deflate=False,  # as production runs it
        ws_max_size=SERVER_MAX_FRAME_BYTES,  # as production runs it (--ws-max-size)
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        pytest.fail("uvicorn did not start")
    yield LiveDesk(url=f"http://127.0.0.1:{port}")
    server.should_exit = True  # graceful: open websockets are closed, their consumers disconnect
    thread.join(timeout=15)
    # Connections the server's threads left open would keep the test database busy for its flush and drop.
    connections.close_all()


class HostSite:
    """A tiny website on its own port, serving one page: a different origin from the desk, as a shop's site is."""

    def __init__(self) -> None:
        self.page = b""
        self.headers: dict[str, str] = {}  # sent with the page, e.g. the shop's own Content-Security-Policy
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(site.page)))
                for name, value in site.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(site.page)

            def log_message(self, format, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="host-site", daemon=True)

    def start(self) -> "HostSite":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host_site():
    site = HostSite().start()
    yield site
    site.stop()


@pytest.fixture
def playwright_browser():
    """Debian's Chromium (never a downloaded one). Missing, it fails the test: a browser test that cannot run is a
    broken run, not a pass. Request this fixture last, so it starts after the data fixtures and stops first."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"needs Chromium at {CHROMIUM} (Debian package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


# --- The agent console -------------------------------------------------------------------------------------------

AGENT_PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password


@pytest.fixture
def console_desk(live_desk, settings):
    """The live desk as the console's own origin: its pages' forms (CSRF) and its agent websocket (Origin check)
    trust it. ``settings`` is process-wide, so the server thread answers with it too."""
    settings.PUBLIC_BASE_URL = live_desk.url
    settings.CSRF_TRUSTED_ORIGINS = [live_desk.url]
    return live_desk


def console_login(page, *, desk: LiveDesk, username: str, password: str = AGENT_PASSWORD, next_path: str = "") -> None:
    """Sign in through the console's login form, as an agent does; waits until the browser has left the form."""
    page.goto(f"{desk.url}/console/login/" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/console/login/" not in url)


# Every Content-Security-Policy violation of a page, as the browser reports it to the page itself (the event the
# spec defines; Chromium also logs "Refused to ..." errors, recorded below), written to the console with a marker.
CSP_VIOLATION_MARKER = "csp-violation:"
CSP_VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("MARKER " + JSON.stringify({
    directive: event.effectiveDirective, blocked: event.blockedURI, source: event.sourceFile,
    line: event.lineNumber, sample: event.sample, page: document.location.pathname,
  }));
});
""".replace("MARKER", CSP_VIOLATION_MARKER)


def csp_problem(message) -> str | None:
    """What a console message says about a CSP violation, or None when it says nothing about one."""
    text = message.text
    if text.startswith(CSP_VIOLATION_MARKER):
        return f"CSP violation: {text.removeprefix(CSP_VIOLATION_MARKER).strip()}"
    if message.type == "error" and "Content Security Policy" in text:
        return f"CSP violation: {text}"
    return None


def watch_for_csp_violations(target, problems: list[str]) -> None:
    """Record in ``problems`` every CSP violation of the pages of ``target`` (a browser context or one page)."""
    target.add_init_script(script=CSP_VIOLATION_LISTENER)

    def on_console(message):
        problem = csp_problem(message)
        if problem is not None:
            problems.append(problem)

    if hasattr(target, "pages"):  # a context: every page it opens
        target.on("page", lambda page: page.on("console", on_console))
    else:
        target.on("console", on_console)


@pytest.fixture
def browser_contexts(playwright_browser):
    """Opens isolated browser contexts (one per agent: own cookies, own websocket) and closes them after the test.
    Call it with Playwright's ``new_context`` options. Uncaught script errors, dialogs (alert, confirm...) and
    Content-Security-Policy violations of every page are recorded in ``context.problems`` (dialogs are dismissed),
    so a test can assert nothing ran, broke or was blocked."""
    opened = []

    def open_context(**options):
        context = playwright_browser.new_context(locale="en-US", **options)
        # A missing element fails within seconds, not after Playwright's default 30 s per action.
        context.set_default_timeout(15_000)
        context.problems = []
        watch_for_csp_violations(context, context.problems)

        def on_dialog(dialog):
            context.problems.append(f"dialog {dialog.type}: {dialog.message}")
            dialog.dismiss()

        def watch(page):
            page.on("pageerror", lambda error: context.problems.append(f"page error: {error}"))
            page.on("dialog", on_dialog)

        context.on("page", watch)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


XSS_TEXT = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@dataclass
class ConsoleStory:
    """One customer who wrote by email, then by SMS, then in the chat (same person: their identities say so), on one
    unassigned ticket; what the shop told us they did (an order, a cart); two agents and an admin."""

    desk: LiveDesk
    email: Channel
    sms: Channel
    chat: Channel
    bea: User
    carl: User
    ada: User  # an admin
    customer: Customer
    ticket: Ticket
    email_message: Message
    sms_message: Message
    chat_message: Message


CUSTOMER_EMAIL = "ann.lee@customer.example"
CUSTOMER_PHONE = "+14155550123"
CUSTOMER_VISITOR = "visitor-7f3c"
EMAIL_MESSAGE_ID = "<order-a1042.1@customer.example>"
EMAIL_SUBJECT = "Where is my order A-1042?"
EMAIL_TEXT = "Hello, I ordered a lamp last week (A-1042) and it has not arrived."
SMS_TEXT = "Any news about A-1042? It was due Monday."


@pytest.fixture
def console_story(console_desk, smtp) -> ConsoleStory:  # noqa: F811  (the fixture, by name)
    """Made through the services a real message goes through (``message_ingest``), so the ticket, the customer's
    identities and ``last_channel`` are what production would have. The email channel sends through the real SMTP
    peer (``smtp``); SMS sends would go to Twilio, which no test here triggers. The chat message is the hostile one:
    HTML and script that must show as text."""
    email = ChannelFactory(
        kind=Channel.Kind.EMAIL,
        name="Shop email",
        address="support@desk.example",
        settings={
            "email_backend": "django.core.mail.backends.smtp.EmailBackend",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
        },
    )
    sms = sms_channel_create(name="Shop texts")
    chat = ChannelFactory(kind=Channel.Kind.CHAT, provider="widget", name="Shop chat", settings={"allowed_origins": []})
    bea = AgentFactory(username="bea", profile__display_name="Bea")
    carl = AgentFactory(username="carl", profile__display_name="Carl")
    ada = AdminFactory(username="ada", profile__display_name="Ada")

    first = message_ingest(
        channel=email,
        inbound=InboundMessage(
            provider_id=EMAIL_MESSAGE_ID,
            sender=InboundIdentity(kind="email", value=CUSTOMER_EMAIL, is_verified=True),
            sender_name="Ann Lee",
            subject=EMAIL_SUBJECT,
            text=EMAIL_TEXT,
        ),
    )
    customer = first.ticket.customer
    # The shop's CRM told us her phone and her chat visitor id (as the customers API would record them).
    customer_identity_add(customer=customer, identity=IdentityInput(kind="phone", value=CUSTOMER_PHONE))
    customer_identity_add(customer=customer, identity=IdentityInput(kind="chat_visitor", value=CUSTOMER_VISITOR))
    Customer.objects.filter(pk=customer.pk).update(
        plan="Enterprise", company="Lee Lamps", lifetime_value=Decimal("1250.00"), attributes={"segment": "vip"}
    )
    second = message_ingest(
        channel=sms,
        inbound=InboundMessage(
            provider_id="SM0000000000000000000000000000e2e1",
            sender=InboundIdentity(kind="phone", value=CUSTOMER_PHONE),
            text=SMS_TEXT,
        ),
    )
    third = message_ingest(
        channel=chat,
        inbound=InboundMessage(
            provider_id="chat-e2e-1", sender=InboundIdentity(kind="chat_visitor", value=CUSTOMER_VISITOR), text=XSS_TEXT
        ),
    )
    assert second.ticket.pk == first.ticket.pk == third.ticket.pk  # the channels continue her open ticket
    ContextEventFactory(
        customer=customer,
        type="order.placed",
        payload={"order_id": "A-1042", "total": "59.90", "currency": "EUR"},
        occurred_at=timezone.now() - timedelta(days=8),
        source="shop",
        external_id="order-A-1042",
    )
    ContextEventFactory(
        customer=customer,
        type="cart.updated",
        payload={"items": 2, "total": "120.00"},
        occurred_at=timezone.now() - timedelta(hours=2),
        source="shop",
        external_id="cart-77",
    )
    customer.refresh_from_db()
    return ConsoleStory(
        desk=console_desk,
        email=email,
        sms=sms,
        chat=chat,
        bea=bea,
        carl=carl,
        ada=ada,
        customer=customer,
        ticket=Ticket.objects.get(pk=first.ticket.pk),
        email_message=first.message,
        sms_message=second.message,
        chat_message=third.message,
    )
