"""The customers API: the company's systems upsert customers and post context events; agents and tokens read."""

import json

import pytest

from agents.models import ApiToken
from agents.services import api_token_create
from customers.models import ContextEvent, Customer, CustomerIdentity
from tests.conftest import bearer
from tests.factories import ContextEventFactory, CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm(api_client, customers_token):
    """The company's CRM, with a token that may read and write customers."""
    return bearer(api_client, customers_token)


def upsert(client, **body):
    return client.post("/api/v1/customers", data=json.dumps(body), content_type="application/json")


def identities_of(customer_id: int) -> list[tuple[str, str, bool]]:
    return sorted(CustomerIdentity.objects.filter(customer_id=customer_id).values_list("kind", "value", "is_verified"))


# --- Upsert ---------------------------------------------------------------------------------------------------


def test_upsert_creates_then_updates_the_customer_of_an_external_id(crm):
    created = upsert(
        crm,
        external_id="crm-42",
        email="Ann.Lee@Example.COM",
        phone="(415) 555-0100",
        name="Ann Lee",
        plan="pro",
        time_zone="Europe/Paris",
        attributes={"tier": "gold", "seats": 5},
    )

    updated = upsert(crm, external_id="crm-42", plan="enterprise", attributes={"seats": 12, "tier": None, "vip": True})

    assert created.status_code == 201
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    customer = Customer.objects.get()
    assert (customer.name, customer.plan, customer.time_zone) == ("Ann Lee", "enterprise", "Europe/Paris")
    assert customer.attributes == {"seats": 12, "vip": True}
    assert updated.json()["attributes"] == {"seats": 12, "vip": True}
    assert identities_of(customer.pk) == [
        ("email", "ann.lee@example.com", True),
        ("external", "crm-42", True),
        ("phone", "+14155550100", True),
    ]
    assert sorted((row["kind"], row["value"]) for row in created.json()["identities"]) == [
        ("email", "ann.lee@example.com"),
        ("external", "crm-42"),
        ("phone", "+14155550100"),
    ]


def test_upsert_by_email_finds_the_customer_whatever_the_case(crm):
    customer = CustomerFactory(name="Ann")
    IdentityFactory(customer=customer, kind="email", value="ann@example.com")

    response = upsert(crm, email="ANN@example.com", external_id="crm-42", company="Acme")

    assert response.status_code == 200
    assert response.json()["id"] == customer.pk
    customer.refresh_from_db()
    assert (customer.name, customer.company) == ("Ann", "Acme")
    assert identities_of(customer.pk) == [("email", "ann@example.com", True), ("external", "crm-42", True)]
    assert Customer.objects.count() == 1


def test_upsert_with_identities_of_two_customers_is_a_conflict_and_changes_nothing(crm):
    ann = CustomerFactory(name="Ann", plan="free")
    IdentityFactory(customer=ann, kind="external", value="crm-42")
    bob = CustomerFactory(name="Bob", plan="free")
    IdentityFactory(customer=bob, kind="email", value="bob@example.com")

    response = upsert(crm, external_id="crm-42", email="bob@example.com", phone="+14155550100", plan="pro")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "These identities belong to different customers; merge them first.",
        "code": "identities_conflict",
    }
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert (ann.plan, bob.plan) == ("free", "free")
    assert CustomerIdentity.objects.filter(kind="phone").count() == 0
    assert Customer.objects.count() == 2


@pytest.mark.parametrize("cleared", [None, ""], ids=["null", "empty string"])
def test_a_lifetime_value_can_be_cleared(cleared, crm):
    """Found by schemathesis: clearing it stored "" in a decimal column, a 500 (and the upsert was lost)."""
    upsert(crm, external_id="crm-9", lifetime_value="120.50")

    response = upsert(crm, external_id="crm-9", lifetime_value=cleared)

    assert response.status_code == 200
    assert response.json()["lifetime_value"] is None
    assert Customer.objects.get().lifetime_value is None


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"email": "ann(at)example.com"}, {"email": ["not a valid email address"]}),
        ({"phone": "call me"}, {"phone": ["not a phone number"]}),
        ({"phone": "123"}, {"phone": ["not a possible phone number"]}),
        ({"external_id": "crm-1", "time_zone": "Mars/Olympus"}, {"time_zone": ["Not an IANA time zone name."]}),
        ({"name": "Nobody"}, {"non_field_errors": ["Give at least one of external_id, email, phone."]}),
        (
            {"external_id": "crm-1", "attributes": ["not", "a", "dict"]},
            {"attributes": ['Expected a dictionary of items but got type "list".']},
        ),
    ],
    ids=[
        "invalid email",
        "garbage phone",
        "short phone",
        "unknown time zone",
        "no identity",
        "attributes not an object",
    ],
)
def test_invalid_upserts_answer_400_with_field_errors(body, errors, crm):
    response = upsert(crm, **body)

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input.", "errors": errors}
    assert Customer.objects.count() == 0
    assert CustomerIdentity.objects.count() == 0


def test_attributes_over_32_kilobytes_are_refused(crm):
    response = upsert(crm, external_id="crm-1", attributes={"notes": "x" * (32 * 1024)})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input.",
        "errors": {"attributes": ["Attributes are limited to 32768 bytes of JSON."]},
    }
    assert Customer.objects.count() == 0


def test_an_agent_may_not_upsert(agent_client):
    response = upsert(agent_client, external_id="crm-1", name="Ann")

    assert response.status_code == 403
    assert "detail" in response.json()
    assert Customer.objects.count() == 0


def test_a_token_with_read_scope_only_may_not_upsert(api_client):
    secret = api_token_create(name="reader", scopes=[ApiToken.Scope.CUSTOMERS_READ]).secret

    response = upsert(bearer(api_client, secret), external_id="crm-1", name="Ann")

    assert response.status_code == 403
    assert "detail" in response.json()
    assert Customer.objects.count() == 0


def test_an_admin_may_upsert(admin_client):
    response = upsert(admin_client, external_id="crm-1", name="Ann")

    assert response.status_code == 201
    assert Customer.objects.get().name == "Ann"


# --- Reading --------------------------------------------------------------------------------------------------


def test_a_customers_read_token_gets_a_customer(api_client):
    customer = CustomerFactory(name="Ann Lee")
    IdentityFactory(customer=customer, kind="email", value="ann@example.com", is_verified=True)
    secret = api_token_create(name="reader", scopes=[ApiToken.Scope.CUSTOMERS_READ]).secret

    response = bearer(api_client, secret).get(f"/api/v1/customers/{customer.pk}")

    assert response.status_code == 200
    assert response.json()["name"] == "Ann Lee"
    assert response.json()["identities"] == [
        {"kind": "email", "value": "ann@example.com", "is_verified": True, "is_primary": False}
    ]


@pytest.mark.parametrize(
    "scopes", [[ApiToken.Scope.MESSAGES_WRITE], [ApiToken.Scope.CUSTOMERS_WRITE], []], ids=["messages", "write", "none"]
)
def test_a_token_without_customers_read_may_not_read(scopes, api_client):
    customer = CustomerFactory()
    secret = api_token_create(name="other", scopes=scopes).secret

    detail = bearer(api_client, secret).get(f"/api/v1/customers/{customer.pk}")
    listing = api_client.get("/api/v1/customers")

    assert (detail.status_code, listing.status_code) == (403, 403)
    assert "detail" in detail.json()


def test_an_agent_reads_customers(agent_client):
    customer = CustomerFactory(name="Ann Lee")

    response = agent_client.get(f"/api/v1/customers/{customer.pk}")

    assert response.status_code == 200
    assert response.json()["id"] == customer.pk


def test_an_unknown_customer_answers_404(crm):
    response = crm.get("/api/v1/customers/999999")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such customer.", "code": "not_found"}


# --- Context events -------------------------------------------------------------------------------------------


def post_event(client, customer_id, **body):
    return client.post(
        f"/api/v1/customers/{customer_id}/events", data=json.dumps(body), content_type="application/json"
    )


def test_a_context_event_is_recorded_once_per_source_and_external_id(crm):
    customer = CustomerFactory()
    event = {
        "type": "order.placed",
        "payload": {"order_id": "A-1", "total": "19.90"},
        "occurred_at": "2025-03-01T10:00:00Z",
        "source": "shop",
        "external_id": "order-A-1",
    }

    first = post_event(crm, customer.pk, **event)
    second = post_event(crm, customer.pk, **{**event, "payload": {"order_id": "A-1", "total": "0"}})

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    stored = ContextEvent.objects.get()
    assert (stored.customer_id, stored.type, stored.payload) == (
        customer.pk,
        "order.placed",
        {"order_id": "A-1", "total": "19.90"},
    )
    assert stored.occurred_at.isoformat() == "2025-03-01T10:00:00+00:00"


def test_the_same_external_id_from_another_source_is_another_event(crm):
    customer = CustomerFactory()

    post_event(crm, customer.pk, type="order.placed", source="shop", external_id="1")
    response = post_event(crm, customer.pk, type="ticket.opened", source="billing", external_id="1")

    assert response.status_code == 201
    assert ContextEvent.objects.filter(customer=customer).count() == 2


def test_events_without_an_external_id_are_each_recorded(crm):
    customer = CustomerFactory()

    statuses = [post_event(crm, customer.pk, type="cart.updated").status_code for _ in range(2)]

    assert statuses == [201, 201]
    assert ContextEvent.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"type": "order.placed", "payload": ["A-1"]}, {"payload": ["The payload must be a JSON object."]}),
        ({"type": "order.placed", "payload": "A-1"}, {"payload": ["The payload must be a JSON object."]}),
        ({"payload": {}}, {"type": ["This field is required."]}),
        (
            {"type": "order.placed", "payload": {"blob": "x" * (64 * 1024)}},
            {"payload": ["The payload is limited to 65536 bytes of JSON."]},
        ),
    ],
    ids=["payload list", "payload string", "no type", "payload too large"],
)
def test_an_invalid_context_event_answers_400(body, errors, crm):
    customer = CustomerFactory()

    response = post_event(crm, customer.pk, **body)

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input.", "errors": errors}
    assert ContextEvent.objects.count() == 0


def test_a_context_event_for_an_unknown_customer_answers_404(crm):
    response = post_event(crm, 999_999, type="order.placed")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such customer.", "code": "not_found"}
    assert ContextEvent.objects.count() == 0


def test_an_agent_may_not_post_context_events(agent_client):
    customer = CustomerFactory()
    ContextEventFactory(customer=customer)

    response = post_event(agent_client, customer.pk, type="order.placed")

    assert response.status_code == 403
    assert ContextEvent.objects.count() == 1
