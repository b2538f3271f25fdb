"""The REST API with input PostgreSQL cannot store as sent, JSON nested too deep, and Unicode digits where an id is
expected: a 400 with the reason, or the change made with its text made storable (``helpdesk.text``); never a 500.
Through the production parser (``helpdesk.api.parsers``) and middleware, on real PostgreSQL."""

import json

import pytest

from channels_app.models import Channel
from customers.models import ContextEvent, Customer
from tests.conftest import bearer, services_or_skip
from tests.factories import ChannelFactory, CustomerFactory, IdentityFactory, TeamFactory, TicketFactory
from tickets.models import Message

pytestmark = pytest.mark.django_db

NUL, SURROGATE = "\x00", "\ud800"


@pytest.fixture(autouse=True)
def _postgres():
    services_or_skip(need_postgres=True)


@pytest.fixture
def crm(api_client, customers_token):
    return bearer(api_client, customers_token)


def post_json(client, path, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", path, data, content_type="application/json")


def patch_json(client, path, body):
    return client.generic("PATCH", path, json.dumps(body).encode(), content_type="application/json")


DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_DETAIL = {"detail": "JSON parse error - JSON is nested more than 64 levels deep"}


# --- Customers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("character", "stored"), [(NUL, ""), (SURROGATE, "\ufffd")], ids=["NUL", "lone surrogate"])
def test_customer_attributes_with_unstorable_text_are_stored_cleaned(character, stored, crm):
    body = {"external_id": "u-1", "name": f"Ann{character}", "attributes": {f"tier{character}": f"gold{character}"}}

    response = post_json(crm, "/api/v1/customers", body)

    assert response.status_code == 201, response.content
    customer = Customer.objects.get()
    assert (customer.name, customer.attributes) == (f"Ann{stored}", {f"tier{stored}": f"gold{stored}"})
    assert response.json()["attributes"] == {f"tier{stored}": f"gold{stored}"}


def test_a_context_event_payload_with_nul_is_stored_cleaned(crm):
    customer = CustomerFactory()

    response = post_json(
        crm, f"/api/v1/customers/{customer.pk}/events", {"type": "order", "payload": {"note": f"a{NUL}b{SURROGATE}"}}
    )

    assert response.status_code == 201, response.content
    assert ContextEvent.objects.get().payload == {"note": "ab\ufffd"}


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/customers/{customer}/events"])
def test_a_deeply_nested_body_is_refused_with_400_and_nothing_is_stored(path, crm):
    customer = CustomerFactory()
    body = json.dumps({"external_id": "u-2", "type": "order", "attributes": "X", "payload": "X"}).encode()
    deep_inside = body.replace(b'"X"', b'{"a":' * 5000 + b"1" + b"}" * 5000)

    for sent in (DEEP, deep_inside):
        response = post_json(crm, path.format(customer=customer.pk), sent)

        assert response.status_code == 400
        assert response.json() == DEEP_DETAIL
    assert list(Customer.objects.values_list("pk", flat=True)) == [customer.pk]
    assert ContextEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("query", "is_found"),
    [("%00", True), ("ann%00", True), ("%C2%B2", False)],
    ids=["NUL alone: no filter", "NUL after text", "superscript two"],
)
def test_customer_search_with_nul_or_a_unicode_digit_answers_200(query, is_found, crm):
    ann = CustomerFactory(name="Ann Lee")
    IdentityFactory(customer=ann, kind="email", value="ann@example.com")

    response = crm.get(f"/api/v1/customers?q={query}")

    assert response.status_code == 200
    assert [customer["id"] for customer in response.json()["results"]] == ([ann.pk] if is_found else [])


# --- Channels -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("character", "stored"), [(NUL, ""), (SURROGATE, "\ufffd")], ids=["NUL", "lone surrogate"])
def test_channel_settings_with_unstorable_text_are_stored_cleaned_on_create_and_change(character, stored, admin_client):
    created = post_json(
        admin_client, "/api/v1/channels", {"kind": "api", "name": "Shop", "settings": {"note": f"a{character}"}}
    )

    assert created.status_code == 201, created.content
    channel = Channel.objects.get()
    assert channel.settings == {"note": f"a{stored}"}

    changed = patch_json(admin_client, f"/api/v1/channels/{channel.pk}", {"settings": {f"k{character}": "v"}})

    assert changed.status_code == 200, changed.content
    channel.refresh_from_db()
    assert channel.settings == {f"k{stored}": "v"}


def test_a_deeply_nested_channel_body_is_refused_with_400(admin_client):
    channel = ChannelFactory(kind=Channel.Kind.API, settings={"a": 1})

    created = post_json(admin_client, "/api/v1/channels", DEEP)
    changed = admin_client.generic(
        "PATCH", f"/api/v1/channels/{channel.pk}", b'{"settings":' + DEEP + b"}", content_type="application/json"
    )

    assert (created.status_code, created.json()) == (400, DEEP_DETAIL)
    assert (changed.status_code, changed.json()) == (400, DEEP_DETAIL)
    assert list(Channel.objects.values_list("settings", flat=True)) == [{"a": 1}]


# --- Tickets --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("customer", ["²", "٣", "1_0", "+1", "99999999999999999999"])
def test_a_ticket_list_filtered_by_a_customer_that_is_not_ascii_digits_answers_400(customer, admin_client):
    response = admin_client.get("/api/v1/tickets", {"customer": customer})

    assert response.status_code == 400
    assert response.json() == {"detail": "customer must be an id.", "code": "invalid"}


def test_a_ticket_list_filtered_by_a_customer_id_still_works(admin_client):
    ticket = TicketFactory()
    TicketFactory()

    response = admin_client.get("/api/v1/tickets", {"customer": str(ticket.customer_id)})

    assert [item["id"] for item in response.json()["results"]] == [ticket.pk]


@pytest.mark.parametrize("limit", ["²", "٣", "1_0"])
def test_a_timeline_limit_that_is_not_ascii_digits_answers_400(limit, admin_client):
    customer = CustomerFactory()

    response = admin_client.get(f"/api/v1/customers/{customer.pk}/timeline", {"limit": limit})

    assert response.status_code == 400
    assert response.json()["detail"] == "limit must be a number."


def test_a_note_with_a_lone_surrogate_is_stored_with_a_replacement_character(admin_client):
    ticket = TicketFactory()

    response = post_json(admin_client, f"/api/v1/tickets/{ticket.pk}/notes", {"text": f"Call{SURROGATE} back{NUL}"})

    assert response.status_code == 201, response.content
    assert Message.objects.get(ticket=ticket).text == "Call\ufffd back"


def test_a_deeply_nested_note_is_refused_with_400(admin_client):
    ticket = TicketFactory()

    response = post_json(admin_client, f"/api/v1/tickets/{ticket.pk}/notes", DEEP)

    assert (response.status_code, response.json()) == (400, DEEP_DETAIL)
    assert Message.objects.filter(ticket=ticket).count() == 0


# --- NUL in a URL's path --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/inbound-events/%00/retry"),
        ("get", "/api/v1/channels/{channel}/events/a%00b"),
        ("get", "/chat/api/pk_%00/config"),
        ("post", "/inbound/sms/twilio/pk_%00/"),
    ],
)
def test_a_nul_in_a_path_is_a_404_in_json(method, path, admin_client):
    """No key or id we issue holds a NUL; the Twilio webhook's channel lookup answered 500 for one."""
    channel = ChannelFactory(kind=Channel.Kind.API)

    response = getattr(admin_client, method)(path.format(channel=channel.pk))

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- Integers in a JSON body ---------------------------------------------------------------------------------------


def arabic_indic(number: int) -> str:
    """``number`` in Arabic-Indic digits, which ``int()`` reads (DRF's IntegerField took "٣" for 3)."""
    return "".join(chr(0x660 + int(digit)) for digit in str(number))


@pytest.mark.parametrize(
    "written", [arabic_indic, lambda number: f"{number}.0"], ids=["Arabic-Indic digits", "a decimal part"]
)
def test_a_ticket_version_or_team_not_in_ascii_digits_is_refused_and_changes_nothing(written, admin_client):
    ticket = TicketFactory()
    team = TeamFactory()

    for body in ({"version": written(ticket.version), "status": "pending"}, {"team_id": written(team.pk)}):
        response = patch_json(admin_client, f"/api/v1/tickets/{ticket.pk}", body)

        assert response.status_code == 400, response.content
        field = next(iter(body))
        assert response.json()["errors"] == {field: ["A valid integer is required."]}
    ticket.refresh_from_db()
    assert (ticket.status, ticket.team_id, ticket.version) == ("open", None, 1)


def test_a_ticket_version_in_ascii_digits_as_a_string_still_works(admin_client):
    ticket = TicketFactory()

    response = patch_json(
        admin_client, f"/api/v1/tickets/{ticket.pk}", {"version": f" {ticket.version} ", "status": "pending"}
    )

    assert response.status_code == 200, response.content
    ticket.refresh_from_db()
    assert ticket.status == "pending"


def test_a_channel_default_team_not_in_ascii_digits_is_refused_and_nothing_is_created(admin_client):
    team = TeamFactory()

    response = post_json(
        admin_client, "/api/v1/channels", {"kind": "api", "name": "Shop", "default_team": arabic_indic(team.pk)}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"default_team": ["A valid integer is required."]}
    assert Channel.objects.count() == 0
