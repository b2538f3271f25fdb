"""Console pages with NUL and Unicode digits in their query strings and hand-read form fields: the page, or a 400
with the reason, never a 500 (NUL reached PostgreSQL as a search term; ``int("²")`` raised after ``isdigit()``).
On real PostgreSQL."""

import pytest

from customers.models import CustomerMerge
from customers.services import customer_merge
from tests.conftest import services_or_skip
from tests.console.conftest import csrf_token
from tests.factories import CustomerFactory, IdentityFactory
from timeline.types import Actor

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgres():
    services_or_skip(need_postgres=True)


@pytest.fixture
def ann():
    customer = CustomerFactory(name="Ann Lee")
    IdentityFactory(customer=customer, kind="email", value="ann@example.com")
    return customer


@pytest.mark.parametrize(
    ("query", "is_found"),
    [("%00", True), ("ann%00", True), ("%C2%B2", False), ("%D9%A3", False)],
    ids=["NUL alone: no filter", "NUL after text", "superscript two", "Arabic-Indic three"],
)
def test_the_customer_search_with_nul_or_a_unicode_digit_answers_200(query, is_found, console_client, ann):
    response = console_client.get(f"/console/customers/?q={query}")

    assert response.status_code == 200
    assert [customer.pk for customer in response.context["customers"]] == ([ann.pk] if is_found else [])


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("%C2%B2", "No customer matches “²”."),
        ("%D9%A3", "No customer matches “٣”."),
        ("%00", "Enter the id, name or email of a customer."),
    ],
)
def test_the_merge_step_with_a_source_that_is_no_id_answers_400_with_the_reason(source, error, console_client, ann):
    target = CustomerFactory(name="Target")

    response = console_client.get(f"/console/customers/{target.pk}/merge/?source={source}")

    assert response.status_code == 400
    assert error in response.content.decode()


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("²", "Choose a customer by their id."),
        ("٣", "Choose a customer by their id."),
        # NUL is removed, as everywhere (helpdesk.text): what is left is an id, of no customer here.
        ("98765\x004321", "There is no customer 987654321."),
    ],
)
def test_merging_a_source_that_is_no_ascii_id_is_refused_and_merges_nothing(source, error, console_client, ann):
    target = CustomerFactory(name="Target")
    url = f"/console/customers/{target.pk}/merge/"
    token = csrf_token(console_client, f"/console/customers/{target.pk}/")

    response = console_client.post(url, {"source": source, "csrfmiddlewaretoken": token})

    assert response.status_code == 400
    assert error in response.content.decode()
    assert CustomerMerge.objects.count() == 0


def test_a_merged_notice_param_in_other_digits_is_ignored(console_client, console_agent, ann):
    customer_merge(source=CustomerFactory(name="Old Ann"), target=ann, actor=Actor.agent(console_agent))

    response = console_client.get(f"/console/customers/{ann.pk}/?merged=%C2%B2")

    assert response.status_code == 200
    assert response.context["just_merged"] is None
