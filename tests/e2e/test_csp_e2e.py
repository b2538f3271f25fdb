"""Every page of ours runs under a Content-Security-Policy without inline script, inline style or eval, and breaks
none of it, in a real browser (Chromium reports each violation to the page: tests/e2e/conftest.py records them in
``context.problems``, for every e2e test that opens its pages through ``browser_contexts``).

Pages: sign-in, every queue, a ticket (a note added through htmx), the customers, every settings page, the API
docs (Swagger UI from drf-spectacular-sidecar), the Django admin, the chat widget's demo page; and the widget on a
shop's page whose own policy allows no inline script or style at all.
"""

import os
import re
from pathlib import Path

import pytest
from django.template.loader import render_to_string
from playwright.sync_api import expect

from chat.embed import widget_script_url
from chat.models import ChatVisitor
from chat.tokens import identity_hmac_compute
from tests.conftest import services_or_skip
from tests.e2e.conftest import CSP_VIOLATION_MARKER, console_login, orm, watch_for_csp_violations
from tests.e2e.test_chat_e2e import SHOP_NAME, chat_settings, desk, open_widget  # noqa: F401  (fixtures, by name)
from tests.e2e.test_console_a11y import QUEUES, settings_links
from tickets.models import Message

WAIT_MS = 15_000
NOTE_TEXT = "Checked with the courier: Thursday."


@pytest.fixture(autouse=True)
def _services():
    services_or_skip(need_postgres=True, need_redis=True)


def open_page(page, url: str) -> None:
    """Open ``url``; it answers 200 with our policy: nothing inline may run, nothing may be evaluated."""
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{url} answered {response and response.status}"
    policy = response.header_value("content-security-policy") or ""
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives.get("script-src") == "'self'", (url, policy)
    assert directives.get("style-src") == "'self'", (url, policy)
    assert directives.get("frame-ancestors") == "'none'", (url, policy)
    page.wait_for_load_state("load")


def test_the_console_pages_break_nothing_of_the_policy(console_story, browser_contexts):
    story = console_story
    context = browser_contexts()
    page = context.new_page()
    open_page(page, f"{story.desk.url}/console/login/")
    console_login(page, desk=story.desk, username="ada")
    visited = 1

    for queue in QUEUES:
        open_page(page, f"{story.desk.url}/console/queues/{queue}/")
        visited += 1
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    page.keyboard.press("?")
    expect(page.locator("#keys-help")).to_be_visible(timeout=WAIT_MS)

    # The ticket page; a note sent through htmx (its form posts with hx-post and swaps the timeline in)
    open_page(page, f"{story.desk.url}/console/tickets/{story.ticket.pk}/")
    page.locator("#note-text").fill(NOTE_TEXT)
    page.locator("#note-form [type=submit]").first.click()
    expect(page.locator("#timeline li[data-channel='note']").filter(has_text=NOTE_TEXT)).to_be_visible(timeout=WAIT_MS)
    assert page.url.endswith(f"/console/tickets/{story.ticket.pk}/")  # swapped in place, no full-page post
    assert orm(lambda: Message.objects.filter(ticket=story.ticket, text=NOTE_TEXT).count()) == 1

    open_page(page, f"{story.desk.url}/console/customers/")
    open_page(page, f"{story.desk.url}/console/customers/{story.customer.pk}/")
    expect(page.locator("#timeline li").first).to_be_visible(timeout=WAIT_MS)
    visited += 3

    seen = {"/console/settings/"}
    open_page(page, f"{story.desk.url}/console/settings/")
    to_visit = settings_links(page)
    while to_visit:
        path = to_visit.pop(0)
        if path in seen:
            continue
        seen.add(path)
        open_page(page, story.desk.url + path)
        to_visit.extend(link for link in settings_links(page) if link not in seen and path.count("/") <= 5)
    visited += len(seen)

    assert visited >= 15
    assert context.problems == []


def test_the_api_docs_render_under_the_policy(console_story, browser_contexts):
    context = browser_contexts()
    page = context.new_page()

    open_page(page, f"{console_story.desk.url}/api/v1/docs")

    # Swagger UI drew the operations from the schema: its init script (a file, ?script) ran
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=WAIT_MS)
    assert page.locator(".swagger-ui .opblock").count() >= 20
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Helpdesk API")
    assert context.problems == []


def test_the_django_admin_under_the_policy(console_story, browser_contexts):
    story = console_story
    context = browser_contexts()
    page = context.new_page()
    open_page(page, f"{story.desk.url}/admin/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/admin/login/" not in url)

    open_page(page, f"{story.desk.url}/admin/")
    open_page(page, f"{story.desk.url}/admin/channels_app/channel/")
    open_page(page, f"{story.desk.url}/admin/channels_app/channel/{story.email.pk}/change/")
    open_page(page, f"{story.desk.url}/admin/auth/user/")

    assert context.problems == []


def test_the_chat_demo_page_loads_the_widget_under_the_policy(console_story, browser_contexts, settings):
    """The demo page's style is a file and its widget script runs. (A chat started there is refused as from no
    allowed origin: a browser sends no Origin on a same-origin GET, so the widget's config request carries none.
    The widget under a strict policy is shown on a shop's page, next test.)"""
    story = console_story
    settings.DEBUG = True  # the demo page exists only then (process-wide: the server thread answers with it)
    context = browser_contexts()
    page = context.new_page()

    with page.expect_response(re.compile(r"/chat/api/.+/config$")):
        open_page(page, f"{story.desk.url}/chat/demo/{story.chat.public_key}/")

    assert page.evaluate("() => getComputedStyle(document.body).fontFamily") == "Georgia, serif"
    assert page.evaluate("() => window.__helpdeskChatLoaded") == {story.chat.public_key: True}
    assert context.problems == []


def test_the_widget_needs_nothing_inline_on_a_shops_page_with_a_strict_policy(desk, playwright_browser):  # noqa: F811
    """The shop allows the desk's script, API and websocket, blob: pictures, and no inline script or style at all;
    its logged-in user is given in a JSON data block, not by a script."""
    ws_origin = desk["ws_url"]
    desk["host"].headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {desk['url']}; connect-src {desk['url']} {ws_origin}; "
            "img-src blob:; style-src 'none'; base-uri 'none'; form-action 'none'"
        )
    }
    right = identity_hmac_compute(secret="shop-identity-secret", user_id="42")
    desk["host"].page = render_to_string(
        "chat/demo.html",
        {
            "public_key": desk["chat"].public_key,
            "widget_src": widget_script_url(base_url=desk["url"]),
            "user_identity": {"id": "42", "email": "ann@shop.example", "name": "Ann", "hmac": right},
        },
    ).encode()
    page = playwright_browser.new_page(locale="en-US")
    problems: list[str] = []
    watch_for_csp_violations(page, problems)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    page.goto(desk["host"].origin + "/")
    open_widget(page)
    expect(page.get_by_role("heading", name=SHOP_NAME, exact=True)).to_be_visible()
    composer = page.get_by_role("textbox", name="Your message")
    composer.fill("Hello from my account")
    composer.press("Enter")

    expect(page.locator(".msg.in:not(.pending) .text")).to_have_text(["Hello from my account"], timeout=WAIT_MS)
    visitor = orm(lambda: ChatVisitor.objects.get(channel=desk["chat"]))
    assert (visitor.external_id, visitor.is_verified) == ("42", True)
    bubble = page.evaluate(
        "() => getComputedStyle(document.querySelector('[data-helpdesk-chat]').shadowRoot"
        ".querySelector('.msg.in .bubble')).backgroundColor"
    )
    assert bubble == "rgb(124, 58, 237)"  # the channel's colour (#7c3aed): the widget's styles applied
    assert problems == []
    page.close()


def test_a_violation_is_caught_and_fails_the_test(console_desk, browser_contexts):
    """The watcher itself: a style added inline to a page of ours is blocked and recorded."""
    context = browser_contexts()
    page = context.new_page()
    open_page(page, f"{console_desk.url}/console/login/")

    with page.expect_console_message(lambda message: message.text.startswith(CSP_VIOLATION_MARKER)):
        page.evaluate(
            "() => document.head.append(Object.assign(document.createElement('style'), {textContent: 'b{}'}))"
        )

    assert len(context.problems) >= 1
    assert all(problem.startswith("CSP violation:") for problem in context.problems)
    assert any('"directive":"style-src-elem"' in problem for problem in context.problems)


def _fits_its_width(page, styled: str) -> dict:
    """How far the page is wider than the window (0 when it fits), and whether the element ``styled`` still has
    the browser's default font (its stylesheet was blocked or lost)."""
    return page.evaluate(
        """(styled) => {
            const font = getComputedStyle(document.querySelector(styled)).fontFamily;
            return {
                overflow: Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth),
                unstyled: font.startsWith('"Times New Roman"') || font === 'serif',
            };
        }""",
        styled,
    )


@pytest.mark.parametrize("width", [1440, 1024])
def test_the_pages_keep_their_layout_under_the_policy(console_story, browser_contexts, settings, tmp_path, width):
    """With styles only from files, each page is styled and fits a 1440 or 1024 px wide window (no sideways
    scroll). Screenshots go to E2E_SCREENSHOT_DIR when it is set (to look at them), else to the test's tmp dir."""
    story = console_story
    settings.DEBUG = True  # for the chat demo page (the server thread answers with it)
    shots = Path(os.environ.get("E2E_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    context = browser_contexts(viewport={"width": width, "height": 900})
    page = context.new_page()
    pages = {
        "login": "/console/login/",
        "queue": "/console/queues/open/",
        "ticket": f"/console/tickets/{story.ticket.pk}/",
        "customer": f"/console/customers/{story.customer.pk}/",
        "settings": "/console/settings/",
        "api-docs": "/api/v1/docs",
        "admin": "/admin/",
        "chat-demo": f"/chat/demo/{story.chat.public_key}/",
    }
    layout = {}

    for name, path in pages.items():
        if name == "queue":
            console_login(page, desk=story.desk, username="ada")
        open_page(page, story.desk.url + path)
        if name == "api-docs":
            expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=WAIT_MS)
        page.screenshot(path=shots / f"{width}-{name}.png")
        layout[name] = _fits_its_width(page, ".swagger-ui .info" if name == "api-docs" else "body")

    assert layout == {name: {"overflow": 0, "unstyled": False} for name in pages}
    assert context.problems == []
