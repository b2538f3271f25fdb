"""No serious or critical accessibility violations on the console's pages, as axe-core finds them in a real browser.

axe-core (from the npm registry, pinned in tests/e2e/package-lock.json) is injected into each page as Chromium shows
it, with its real CSS and scripts, after the page's own scripts have run. Each test checks every page of one area
and reports them all at once (rule id, help, failing elements), so one run shows everything to fix.

Pages: sign-in (empty and with an error), every queue, a ticket with email, SMS and chat messages, a reply, a note
and timeline events, the customer list and a profile, every settings page an admin can reach from the settings
home; the keyboard-shortcut dialog open.
"""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import services_or_skip
from tests.e2e import axe
from tests.e2e.axe import FAILING_IMPACTS, axe_inject, axe_violations
from tests.e2e.conftest import console_login
from tickets.services.replies import note_create, reply_create

PACKAGE_JSON = Path(__file__).resolve().parent / "package.json"
QUEUES = ("mine", "unassigned", "teams", "open", "pending", "sla-at-risk")
MAX_SETTINGS_PAGES = 30  # a settings area with more links than this is a loop, not a page list
WAIT_MS = 15_000


@pytest.fixture(autouse=True)
def _services():
    services_or_skip(need_postgres=True, need_redis=True)


@pytest.fixture
def ticket_story(console_story):
    """The story's ticket with an agent's email reply (sent to the SMTP peer) and a note with a mention: every kind
    of timeline item."""
    story = console_story
    reply_create(ticket=story.ticket, author=story.bea, text="It ships today.", channel=story.email)
    note_create(ticket=story.ticket, author=story.bea, text="@carl please check the courier.")
    return story


class AccessibilityReport:
    """Collects serious and critical violations page by page; fails once, with all of them."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.checked: list[str] = []

    def check(self, page, *, name: str) -> None:
        page.wait_for_load_state("load")
        self.checked.append(name)
        violations = axe_violations(page)
        failing = [v for v in violations if v.impact in FAILING_IMPACTS]
        # Shown with the test's output (on failure, or with -s): worth fixing, not failing.
        for violation in violations:
            if violation.impact not in FAILING_IMPACTS:
                print(f"axe-core, {name}: [{violation.impact}] {violation.rule} at {', '.join(violation.targets)}")
        if failing:
            details = "\n".join(violation.describe() for violation in failing)
            self.failures.append(f"{name} ({page.url}):\n{details}")

    def assert_clean(self) -> None:
        print("axe-core checked:", "; ".join(self.checked))
        if self.failures:
            pytest.fail(
                f"axe-core: serious or critical violations on {len(self.failures)} of {len(self.checked)} pages:\n\n"
                + "\n\n".join(self.failures)
            )


def open_page(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None
    assert response.status == 200, f"{url} answered {response.status}"


def test_the_pinned_axe_core_runs_in_the_browser(browser_contexts):
    # The version the lockfile pins is the one installed and injected (a stale node_modules would differ).
    pinned = json.loads(PACKAGE_JSON.read_text())["dependencies"]["axe-core"]
    page = browser_contexts().new_page()
    page.set_content("<!DOCTYPE html><html lang='en'><title>t</title><main><h1>t</h1><img src='data:,'></main></html>")
    axe_inject(page)
    assert page.evaluate("() => window.axe.version") == pinned
    # And it finds what it must: an image without a text alternative is a critical violation.
    assert [(v.rule, v.impact) for v in axe_violations(page)] == [("image-alt", "critical")]


def test_without_axe_core_the_check_fails_and_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(axe, "AXE_SCRIPT", tmp_path / "missing" / "axe.min.js")
    axe.axe_source.cache_clear()
    try:
        with pytest.raises(pytest.fail.Exception, match=r"run npm ci --prefix tests/e2e"):
            axe.axe_source()
    finally:
        axe.axe_source.cache_clear()


def test_the_sign_in_page_is_accessible(console_desk, browser_contexts):
    page = browser_contexts().new_page()
    report = AccessibilityReport()

    open_page(page, f"{console_desk.url}/console/login/")
    report.check(page, name="sign-in")

    # With an error shown next to the form
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")
    report.check(page, name="sign-in with errors")
    report.assert_clean()


def test_the_queue_pages_are_accessible(console_story, browser_contexts):
    story = console_story
    context = browser_contexts()
    page = context.new_page()
    console_login(page, desk=story.desk, username="bea")
    report = AccessibilityReport()

    for queue in QUEUES:
        open_page(page, f"{story.desk.url}/console/queues/{queue}/")
        report.check(page, name=f"queue {queue}")

    # The unassigned queue with a row selected from the keyboard, and the shortcut list open
    open_page(page, f"{story.desk.url}/console/queues/unassigned/")
    page.keyboard.press("j")
    expect(page.locator("[data-ticket-row][aria-selected='true']")).to_have_count(1, timeout=WAIT_MS)
    report.check(page, name="queue unassigned, row selected")
    page.keyboard.press("?")
    expect(page.locator("#keys-help")).to_be_visible(timeout=WAIT_MS)
    report.check(page, name="keyboard shortcut dialog")

    # A filtered and searched queue (the filter form with its values set)
    open_page(page, f"{story.desk.url}/console/queues/open/?channel=email&status=open&q=lamp")
    report.check(page, name="queue open, filtered and searched")
    report.assert_clean()
    assert context.problems == []


def test_the_ticket_page_is_accessible(ticket_story, browser_contexts):
    story = ticket_story
    context = browser_contexts()
    page = context.new_page()
    console_login(page, desk=story.desk, username="bea")
    report = AccessibilityReport()

    open_page(page, f"{story.desk.url}/console/tickets/{story.ticket.pk}/")
    for channel in ("email", "sms", "chat", "note"):
        expect(page.locator(f"#timeline li[data-channel='{channel}']").first).to_be_visible(timeout=WAIT_MS)
    report.check(page, name="ticket with email, SMS, chat, a reply and a note")

    # The ticket page as a second agent sees it, with the first shown as a viewer
    other = browser_contexts().new_page()
    console_login(other, desk=story.desk, username="carl", next_path=f"/console/tickets/{story.ticket.pk}/")
    expect(page.locator("#collision")).to_contain_text("Carl", timeout=WAIT_MS)
    report.check(page, name="ticket with another agent viewing")

    # The reply form refused with an error next to the field (an empty reply)
    page.locator("#reply-text").fill("")
    page.locator("#reply-form [type=submit]").first.click()
    expect(page.locator("#reply-form .field-error, #reply-form .errorlist").first).to_be_visible(timeout=WAIT_MS)
    report.check(page, name="ticket, reply form with an error")
    report.assert_clean()
    assert context.problems == []


def test_the_customer_pages_are_accessible(ticket_story, browser_contexts):
    story = ticket_story
    context = browser_contexts()
    page = context.new_page()
    console_login(page, desk=story.desk, username="bea")
    report = AccessibilityReport()

    open_page(page, f"{story.desk.url}/console/customers/")
    report.check(page, name="customer list")
    open_page(page, f"{story.desk.url}/console/customers/?q=Ann")
    report.check(page, name="customer list, searched")
    open_page(page, f"{story.desk.url}/console/customers/{story.customer.pk}/")
    expect(page.locator("#timeline li").first).to_be_visible(timeout=WAIT_MS)
    report.check(page, name="customer profile")
    report.assert_clean()
    assert context.problems == []


def test_the_settings_pages_are_accessible(console_story, browser_contexts):
    story = console_story
    context = browser_contexts()
    page = context.new_page()
    console_login(page, desk=story.desk, username="ada")
    report = AccessibilityReport()

    open_page(page, f"{story.desk.url}/console/settings/")
    report.check(page, name="settings")

    # Every settings page reachable from the settings home by a link, one level down and the next (lists, then
    # the forms they link to: a channel, a team, a canned response)
    seen = {"/console/settings/"}
    to_visit = settings_links(page)
    while to_visit:
        path = to_visit.pop(0)
        if path in seen:
            continue
        seen.add(path)
        assert len(seen) <= MAX_SETTINGS_PAGES, f"more than {MAX_SETTINGS_PAGES} settings pages: {sorted(seen)}"
        open_page(page, story.desk.url + path)
        report.check(page, name=f"settings {path}")
        to_visit.extend(link for link in settings_links(page) if link not in seen and path.count("/") <= 5)
    assert len(seen) >= 4, f"the settings home links to too few pages: {sorted(seen)}"

    # The "new" forms sent empty: each answers 400 with its errors next to the fields
    for path in sorted(link for link in seen if "/new/" in link):
        open_page(page, story.desk.url + path)
        with page.expect_navigation():
            page.eval_on_selector("main form[method=post]", "form => form.submit()")
        expect(page.locator("main .field-error, main .errorlist").first).to_be_visible(timeout=WAIT_MS)
        report.check(page, name=f"settings {path}, sent empty")
    report.assert_clean()
    assert context.problems == []


def settings_links(page) -> list[str]:
    """Paths of links inside <main> to other settings pages (no downloads, no fragments)."""
    hrefs = page.eval_on_selector_all(
        "main a[href]", "links => links.map(link => new URL(link.href, location.href).pathname)"
    )
    return sorted({href for href in hrefs if re.match(r"^/console/settings/[\w/-]+/$", href)})
