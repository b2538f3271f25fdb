"""The pages of outreach in Chromium, at 1440 and 1024 px wide: the unsubscribe page a customer opens from an
email (GET asks, the button unsubscribes), and the console profile's "When we write first" form an agent saves.
Neither may break the CSP, scroll sideways, or have a serious accessibility violation.

Screenshots go to ``$OUTREACH_SCREENSHOTS`` when it is set (to look at them), else to the test's temporary folder.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from customers.models import EmailSubscription
from outreach.unsubscribe import unsubscribe_url
from tests.conftest import services_or_skip
from tests.e2e.axe import FAILING_IMPACTS, axe_violations
from tests.e2e.conftest import console_login, orm
from timeline.models import TimelineEvent

WIDTHS = (1440, 1024)


@pytest.fixture(autouse=True)
def _services():
    services_or_skip(need_postgres=True, need_redis=True)


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("OUTREACH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def page_problems(page) -> list[str]:
    """Sideways scrolling and serious accessibility violations of the page as it is now."""
    problems = [v.describe() for v in axe_violations(page) if v.impact in FAILING_IMPACTS]
    if page.evaluate("() => document.documentElement.scrollWidth > document.documentElement.clientWidth"):
        problems.append("the page scrolls sideways")
    return problems


@pytest.mark.parametrize("width", WIDTHS)
def test_the_unsubscribe_page_asks_then_unsubscribes(console_story, browser_contexts, shots, width):
    story = console_story
    url = orm(unsubscribe_url, customer_id=story.customer.pk, purpose="survey")
    context = browser_contexts(viewport={"width": width, "height": 800})
    page = context.new_page()

    page.goto(url)
    expect(page.get_by_role("heading", name="Stop surveys by email?")).to_be_visible()
    page.screenshot(path=str(shots / f"unsubscribe-confirm-{width}.png"), full_page=True)
    assert page_problems(page) == []
    assert orm(lambda: EmailSubscription.objects.count()) == 0  # opening the link changed nothing

    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    page.screenshot(path=str(shots / f"unsubscribe-done-{width}.png"), full_page=True)
    assert page_problems(page) == []
    assert orm(lambda: list(EmailSubscription.objects.values_list("purpose", "is_subscribed"))) == [("survey", False)]

    page.goto(url[:-5] + "xxxx/")
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    page.screenshot(path=str(shots / f"unsubscribe-invalid-{width}.png"), full_page=True)
    assert context.problems == []


@pytest.mark.parametrize("width", WIDTHS)
def test_an_agent_saves_the_customers_contact_preferences(console_story, browser_contexts, shots, width):
    story = console_story
    context = browser_contexts(viewport={"width": width, "height": 900})
    page = context.new_page()
    console_login(page, desk=story.desk, username="bea", next_path=f"/console/customers/{story.customer.pk}/")

    form = page.locator("form#contact-preferences")  # loaded by htmx after the page
    expect(form).to_be_visible()
    page.screenshot(path=str(shots / f"customer-contact-{width}.png"), full_page=False)
    assert page_problems(page) == []

    form.get_by_label("Preferred channel").select_option(label="Shop texts (SMS)")
    form.get_by_label("Surveys").uncheck()
    form.get_by_role("button", name="Save preferences").click()
    # The profile reloads with the change on its timeline
    expect(page.get_by_text("Contact preferences saved: the change is on the timeline.")).to_be_visible()
    expect(page.get_by_text("unsubscribed from survey emails")).to_be_visible()
    expect(page.locator("form#contact-preferences")).to_be_visible()
    page.screenshot(path=str(shots / f"customer-contact-saved-{width}.png"), full_page=False)
    assert page_problems(page) == []

    assert orm(lambda: list(EmailSubscription.objects.values_list("purpose", "is_subscribed"))) == [("survey", False)]
    types = orm(lambda: set(TimelineEvent.objects.values_list("type", flat=True)))
    assert {"email_subscription_changed", "preferred_channel_changed"} <= types
    assert context.problems == []
