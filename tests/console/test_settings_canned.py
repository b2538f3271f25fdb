"""Settings: canned responses listed, created, edited and deactivated; a duplicate title or an unknown placeholder is
shown next to its field; the placeholders are documented on the page."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.console.conftest import csrf_token
from tests.factories import CannedResponseFactory, TeamFactory
from tickets.models import CannedResponse

pytestmark = pytest.mark.django_db

LIST_URL = "/console/settings/canned/"
NEW_URL = "/console/settings/canned/new/"
PLACEHOLDERS = (
    "{{ customer.name }}",
    "{{ customer.first_name }}",
    "{{ ticket.id }}",
    "{{ ticket.subject }}",
    "{{ agent.name }}",
)


def post(client: Client, url: str, data: dict, *, form_url: str | None = None):
    token = csrf_token(client, form_url or url)
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def field_errors(response, field: str) -> list[str]:
    return [str(error) for error in response.context["form"].errors.get(field, [])]


def edit_url(canned: CannedResponse) -> str:
    return reverse("console:settings-canned-edit", args=[canned.pk])


@pytest.mark.parametrize("url", [LIST_URL, NEW_URL])
def test_agents_get_403_and_admins_200(console_client, console_admin_client, url):
    assert console_client.get(url).status_code == 403
    assert console_admin_client.get(url).status_code == 200


def test_the_placeholders_are_documented_on_the_page(console_admin_client):
    page = console_admin_client.get(LIST_URL).content.decode()

    for placeholder in PLACEHOLDERS:
        assert placeholder in page


def test_an_admin_creates_a_canned_response_for_a_team(console_admin_client, console_admin):
    team = TeamFactory(name="Billing")

    response = post(
        console_admin_client,
        NEW_URL,
        {"title": "Refund", "body": "Hi {{ customer.first_name }}, ticket {{ ticket.id }}.", "team": team.pk},
    )

    assert response.status_code == 302
    canned = CannedResponse.objects.get()
    assert (canned.title, canned.body, canned.team, canned.created_by) == (
        "Refund",
        "Hi {{ customer.first_name }}, ticket {{ ticket.id }}.",
        team,
        console_admin,
    )
    assert canned.is_active


@pytest.mark.parametrize("title", ["Refund", "refund"])
def test_a_duplicate_title_is_shown_next_to_the_title(console_admin_client, title):
    CannedResponseFactory(title="Refund")

    response = post(console_admin_client, NEW_URL, {"title": title, "body": "Text"})

    assert response.status_code == 400
    assert field_errors(response, "title") == ["Another canned response has this title."]
    assert 'id="id_title_error"' in response.content.decode()
    assert CannedResponse.objects.count() == 1


def test_an_unknown_placeholder_is_shown_next_to_the_body(console_admin_client):
    response = post(console_admin_client, NEW_URL, {"title": "Hello", "body": "Hi {{ customer.nmae }}"})

    assert response.status_code == 400
    assert field_errors(response, "body")[0].startswith("Unknown placeholder {{ customer.nmae }}")
    assert not CannedResponse.objects.exists()


def test_an_admin_edits_and_deactivates_a_canned_response(console_admin_client):
    canned = CannedResponseFactory(title="Refund", body="Old")

    response = post(console_admin_client, edit_url(canned), {"title": "Refunds", "body": "New", "is_active": "on"})

    assert response.status_code == 302
    canned.refresh_from_db()
    assert (canned.title, canned.body, canned.team, canned.is_active) == ("Refunds", "New", None, True)

    response = post(
        console_admin_client,
        reverse("console:settings-canned-deactivate", args=[canned.pk]),
        {},
        form_url=LIST_URL,
    )

    assert response.status_code == 302
    canned.refresh_from_db()
    assert not canned.is_active
    assert CannedResponse.objects.filter(pk=canned.pk).exists()


def test_renaming_to_a_taken_title_is_refused(console_admin_client):
    CannedResponseFactory(title="Refund")
    other = CannedResponseFactory(title="Shipping")

    response = post(console_admin_client, edit_url(other), {"title": "Refund", "body": "x", "is_active": "on"})

    assert response.status_code == 400
    assert field_errors(response, "title") == ["Another canned response has this title."]
    other.refresh_from_db()
    assert other.title == "Shipping"


def test_an_agent_cannot_create_a_canned_response(console_client):
    response = console_client.post(NEW_URL, {"title": "Hello", "body": "Hi"})

    assert response.status_code == 403
    assert not CannedResponse.objects.exists()


def test_creating_without_the_csrf_token_is_refused(console_admin_client):
    response = console_admin_client.post(NEW_URL, {"title": "Hello", "body": "Hi"})

    assert response.status_code == 403
    assert not CannedResponse.objects.exists()


def test_titles_and_bodies_are_escaped(console_admin_client):
    CannedResponseFactory(title="<script>alert(1)</script>", body="<img src=x onerror=alert(2)>")

    page = console_admin_client.get(LIST_URL).content.decode()

    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("size", [2, 12])
def test_the_list_costs_the_same_queries_whatever_its_size(console_admin_client, django_assert_num_queries, size):
    team = TeamFactory()
    for number in range(size):
        CannedResponseFactory(title=f"Response {number}", team=team if number % 2 else None)
    console_admin_client.get(LIST_URL)

    with django_assert_num_queries(4):
        response = console_admin_client.get(LIST_URL)

    assert response.content.decode().count("data-canned-id=") == size
