"""Console customer pages: list and search, the profile with the timeline, merging and undoing from the page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.models import Channel
from console.views import customers as customer_views
from customers.models import Customer, CustomerIdentity, CustomerMerge
from customers.services import customer_merge
from tests.console.conftest import csrf_token
from tests.factories import (
    ChannelFactory,
    ContextEventFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
    TimelineEventFactory,
)
from tickets.models import Ticket
from timeline.models import TimelineEvent
from timeline.types import Actor

pytestmark = pytest.mark.django_db

LIST_URL = "/console/customers/"


def customer_url(customer) -> str:
    return f"/console/customers/{customer.pk}/"


def with_activity(customer: Customer, minutes_ago: int) -> Customer:
    """Set the customer's last activity (``updated_at`` is auto_now, so by update)."""
    at = timezone.now() - timedelta(minutes=minutes_ago)
    Customer.objects.filter(pk=customer.pk).update(updated_at=at)
    customer.updated_at = at
    return customer


def rows(response) -> list[int]:
    return [customer.pk for customer in response.context["customers"]]


def customers_with_history(count: int) -> list[Customer]:
    customers = []
    for index in range(count):
        customer = CustomerFactory(company=f"Company {index}")
        IdentityFactory(customer=customer)
        IdentityFactory(customer=customer, kind=CustomerIdentity.Kind.PHONE, value=f"+1415555{index:04d}")
        customers.append(customer)
    return customers


# --- List and search ------------------------------------------------------------------------------------------


def test_the_list_shows_the_newest_activity_first_and_hides_merged_customers(console_client, console_agent):
    older = with_activity(CustomerFactory(name="Older"), 30)
    newer = with_activity(CustomerFactory(name="Newer"), 5)
    merged = with_activity(CustomerFactory(name="Merged Away"), 1)
    customer_merge(source=merged, target=older, actor=Actor.agent(console_agent))
    with_activity(older, 30)

    response = console_client.get(LIST_URL)

    assert response.status_code == 200
    assert rows(response) == [newer.pk, older.pk]
    assert b'id="customer-search"' in response.content
    assert b"Merged Away" not in response.content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ann", "ann"),
        ("ACME", "ann"),
        ("ann@example.COM", "ann"),
        ("(415) 555-0100", "ann"),  # a typed phone number, normalised to E.164
        ("+1 415 555 0100", "ann"),
        ("(415) 555-01", "ann"),  # part of a number
        ("Beta Corp", "bob"),
        ("bob@", "bob"),
    ],
)
def test_search_by_name_company_email_or_phone(console_client, query, expected):
    ann = CustomerFactory(name="Ann Lee", company="Acme")
    IdentityFactory(customer=ann, value="ann@example.com")
    IdentityFactory(customer=ann, kind=CustomerIdentity.Kind.PHONE, value="+14155550100")
    bob = CustomerFactory(name="Bob Stone", company="Beta Corp")
    IdentityFactory(customer=bob, value="bob@example.com")
    CustomerFactory(name="Carla Diaz", company="Gamma")

    response = console_client.get(LIST_URL, {"q": query})

    assert rows(response) == [{"ann": ann, "bob": bob}[expected].pk]


def test_search_by_customer_id(console_client):
    wanted = CustomerFactory(name="Someone")
    CustomerFactory(name="Someone else")

    response = console_client.get(LIST_URL, {"q": str(wanted.pk)})

    assert rows(response) == [wanted.pk]


def test_pages_follow_the_keyset_without_offset(console_client, monkeypatch):
    monkeypatch.setattr("console.views.customers.PAGE_SIZE", 2)
    customers = [with_activity(CustomerFactory(name=f"Customer {index}"), index) for index in range(5)]

    seen = []
    url, params = LIST_URL, {}
    with CaptureQueriesContext(connection) as queries:
        while True:
            response = console_client.get(url, params)
            assert response.status_code == 200
            seen += rows(response)
            if not response.context["next_cursor"]:
                break
            params = {"after": response.context["next_cursor"]}

    assert seen == [customer.pk for customer in customers]
    assert not any("OFFSET" in query["sql"].upper() for query in queries.captured_queries)


def test_a_broken_cursor_is_a_clear_400(console_client):
    response = console_client.get(LIST_URL, {"after": "not-a-cursor"})

    assert response.status_code == 400
    assert b"Invalid cursor." in response.content


@pytest.mark.parametrize("count", [3, 30])
def test_the_list_costs_the_same_queries_whatever_the_size(console_client, django_assert_max_num_queries, count):
    customers_with_history(count)
    console_client.get(LIST_URL)  # the session and the agent's profile are warm, as in a real visit

    with django_assert_max_num_queries(5):
        response = console_client.get(LIST_URL, {"q": "Company"})

    assert len(rows(response)) == count


def test_names_are_escaped_in_the_list(console_client):
    CustomerFactory(name="<script>alert(1)</script>", company="<b>Bold</b>")

    response = console_client.get(LIST_URL)

    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content
    assert b"&lt;b&gt;Bold&lt;/b&gt;" in response.content


# --- Profile --------------------------------------------------------------------------------------------------


def test_the_profile_shows_the_customer_and_their_visible_tickets_and_messages(console_client):
    email = ChannelFactory(kind=Channel.Kind.EMAIL)
    sms = ChannelFactory(kind=Channel.Kind.SMS)
    customer = CustomerFactory(
        name="Ann Lee",
        company="Acme",
        plan="enterprise",
        lifetime_value="1200.00",
        locale="en-GB",
        time_zone="Europe/London",
        attributes={"tier": "gold"},
    )
    IdentityFactory(customer=customer, value="ann@example.com")
    seen = TicketFactory(customer=customer, subject="Refund please")
    MessageFactory(ticket=seen, channel=email, text="Emailed about my refund")
    MessageFactory(ticket=seen, channel=sms, text="Texted about my refund")
    hidden = TicketFactory(customer=customer, subject="Secret escalation", team=TeamFactory())
    MessageFactory(ticket=hidden, channel=email, text="Other team's conversation")
    # A payload with its own "items" key: the template must not take it for dict.items.
    ContextEventFactory(customer=customer, type="order.placed", payload={"order_id": "A-9", "items": 3})

    response = console_client.get(customer_url(customer))

    assert response.status_code == 200
    content = response.content.decode()
    for text in ("Ann Lee", "Acme", "enterprise", "1200.00", "en-GB", "Europe/London", "ann@example.com", "tier"):
        assert text in content
    assert "gold" in content and "order.placed" in content and "items: 3; order_id: A-9" in content
    assert "Refund please" in content and 'data-channel="email"' in content and 'data-channel="sms"' in content
    assert "Emailed about my refund" in content and "Texted about my refund" in content
    assert [ticket.pk for ticket in response.context["tickets"]] == [seen.pk]
    assert "Secret escalation" not in content
    assert "Other team&#x27;s conversation" not in content and "Other team's conversation" not in content


def test_the_profile_escapes_names_attributes_and_messages(console_client):
    customer = CustomerFactory(name="<script>alert('n')</script>", attributes={"<img src=x>": "<script>a</script>"})
    MessageFactory(ticket=TicketFactory(customer=customer), text="<script>alert('m')</script>")

    response = console_client.get(customer_url(customer))

    assert b"<script>alert" not in response.content
    assert b"<img src=x>" not in response.content
    assert b"&lt;script&gt;alert(&#x27;m&#x27;)&lt;/script&gt;" in response.content
    assert b"&lt;img src=x&gt;" in response.content


def test_load_earlier_brings_the_next_timeline_page_by_htmx(console_client, monkeypatch):
    monkeypatch.setattr("console.views.customers.TIMELINE_PAGE_SIZE", 2)
    ticket = TicketFactory()
    messages = [MessageFactory(ticket=ticket, text=f"Message number {index}") for index in range(3)]
    response = console_client.get(customer_url(ticket.customer))
    cursor = response.context["timeline"].next_cursor
    assert cursor and b"Load earlier" in response.content
    shown = {entry.id for entry in response.context["timeline"].entries if entry.kind == "message"}

    earlier = console_client.get(
        f"{customer_url(ticket.customer)}timeline/", {"cursor": cursor}, headers={"HX-Request": "true"}
    )

    assert earlier.status_code == 200
    assert b"<html" not in earlier.content
    entries = earlier.context["timeline"].entries
    assert shown | {entry.id for entry in entries if entry.kind == "message"} == {message.pk for message in messages}


def test_a_merged_customers_page_redirects_to_the_survivor_with_a_notice(console_client, console_agent):
    survivor, merged = CustomerFactory(name="Survivor"), CustomerFactory(name="Merged")
    customer_merge(source=merged, target=survivor, actor=Actor.agent(console_agent))

    response = console_client.get(customer_url(merged), follow=True)

    assert response.redirect_chain == [(customer_url(survivor), 302)]
    assert f"Customer {merged.pk} was merged into this customer" in response.content.decode()


def test_an_unknown_customer_is_404(console_client):
    assert console_client.get("/console/customers/999999/").status_code == 404
    assert console_client.get("/console/customers/999999/timeline/", headers={"HX-Request": "true"}).status_code == 404


@pytest.mark.parametrize("count", [2, 20])
def test_the_profile_costs_the_same_queries_whatever_the_history(
    console_client, console_agent, django_assert_max_num_queries, count
):
    customer = CustomerFactory()
    for _ in range(3):
        IdentityFactory(customer=customer)
    for index in range(count):
        ticket = TicketFactory(customer=customer, team=TeamFactory() if index % 2 else None)
        MessageFactory(ticket=ticket)
        MessageFactory(ticket=ticket)
        ContextEventFactory(customer=customer)
    merged = CustomerFactory()
    # by an admin or the system: the customer has tickets this agent may not see
    customer_merge(source=merged, target=customer, actor=Actor.system())
    console_client.get(LIST_URL)

    with django_assert_max_num_queries(15):
        response = console_client.get(customer_url(customer))

    assert response.status_code == 200
    assert len(response.context["tickets"]) == min((count + 1) // 2, 25)


# --- Merge and undo -------------------------------------------------------------------------------------------


@pytest.fixture
def pair():
    target = CustomerFactory(name="María García")
    IdentityFactory(customer=target, value="maria@example.com")
    source = CustomerFactory(name="M. Garcia", company="Acme")
    IdentityFactory(customer=source, value="maria.old@example.com")
    ticket = TicketFactory(customer=source)
    MessageFactory(ticket=ticket, text="From the old address")
    return source, target, ticket


def test_the_merge_confirm_step_shows_both_customers(console_client, pair):
    source, target, _ = pair

    response = console_client.get(f"{customer_url(target)}merge/", {"source": str(source.pk)})

    assert response.status_code == 200
    content = response.content.decode()
    assert "maria.old@example.com" in content and "maria@example.com" in content
    assert f'name="source" value="{source.pk}"' in content
    assert 'id="merge-confirm-form"' in content


def test_the_merge_form_searches_by_name_and_offers_choices(console_client, pair):
    source, target, _ = pair

    response = console_client.get(f"{customer_url(target)}merge/", {"source": "garcia"})

    assert response.status_code == 200
    assert [candidate.pk for candidate in response.context["candidates"]] == [source.pk]


def test_merge_and_undo_from_the_page(console_client, pair):
    source, target, ticket = pair
    token = csrf_token(console_client, customer_url(target))

    response = console_client.post(f"{customer_url(target)}merge/", {"source": source.pk, "csrfmiddlewaretoken": token})

    merge = CustomerMerge.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{customer_url(target)}?merged={merge.pk}"
    assert Ticket.objects.get(pk=ticket.pk).customer_id == target.pk
    page = console_client.get(response["Location"])
    content = page.content.decode()
    assert 'id="merge-success"' in content and f"/console/customers/merges/{merge.pk}/undo/" in content
    assert "From the old address" in content

    undo = console_client.post(f"/console/customers/merges/{merge.pk}/undo/", {"csrfmiddlewaretoken": token})

    assert undo.status_code == 302 and undo["Location"] == customer_url(target)
    assert Ticket.objects.get(pk=ticket.pk).customer_id == source.pk
    assert Customer.objects.get(pk=source.pk).merged_into_id is None
    assert CustomerMerge.objects.get().undone_at is not None

    again = console_client.post(
        f"/console/customers/merges/{merge.pk}/undo/", {"csrfmiddlewaretoken": token}, follow=True
    )
    assert "That merge was already undone" in again.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).customer_id == source.pk


def test_merging_into_itself_is_refused_next_to_the_field(console_client, pair):
    _, target, _ = pair
    token = csrf_token(console_client, customer_url(target))

    response = console_client.post(f"{customer_url(target)}merge/", {"source": target.pk, "csrfmiddlewaretoken": token})

    assert response.status_code == 400
    assert b'class="field-error"' in response.content
    assert b"A customer cannot be merged into itself." in response.content
    assert not CustomerMerge.objects.exists()


def test_merging_a_merged_customer_is_refused_next_to_the_field(console_client, console_agent, pair):
    source, target, ticket = pair
    elsewhere = CustomerFactory()
    customer_merge(source=source, target=elsewhere, actor=Actor.agent(console_agent))
    token = csrf_token(console_client, customer_url(target))

    response = console_client.post(f"{customer_url(target)}merge/", {"source": source.pk, "csrfmiddlewaretoken": token})

    assert response.status_code == 400
    assert f"was already merged into customer {elsewhere.pk}".encode() in response.content
    assert Ticket.objects.get(pk=ticket.pk).customer_id == elsewhere.pk
    assert CustomerMerge.objects.count() == 1


@pytest.mark.parametrize("value", ["", "999999", "nobody-matches-this"])
def test_an_unknown_or_missing_source_is_a_400_next_to_the_field(console_client, pair, value):
    _, target, _ = pair
    token = csrf_token(console_client, customer_url(target))

    posted = console_client.post(f"{customer_url(target)}merge/", {"source": value, "csrfmiddlewaretoken": token})
    looked_up = console_client.get(f"{customer_url(target)}merge/", {"source": value})

    assert posted.status_code == 400 and b'class="field-error"' in posted.content
    if value != "999999":  # an unknown id on the GET step is searched as text, and 999999 matches nothing either
        assert looked_up.status_code == 400 and b'class="field-error"' in looked_up.content
    assert not CustomerMerge.objects.exists()


def test_merge_and_undo_without_csrf_are_403_and_change_nothing(console_client, console_agent, pair):
    source, target, ticket = pair

    merge_response = console_client.post(f"{customer_url(target)}merge/", {"source": source.pk})
    merge = customer_merge(source=source, target=target, actor=Actor.agent(console_agent))
    undo_response = console_client.post(f"/console/customers/merges/{merge.pk}/undo/")

    assert (merge_response.status_code, undo_response.status_code) == (403, 403)
    assert CustomerMerge.objects.get().undone_at is None
    assert Ticket.objects.get(pk=ticket.pk).customer_id == target.pk


def test_unknown_ids_are_404(console_client, pair):
    source, _, _ = pair
    token = csrf_token(console_client, customer_url(source))

    assert (
        console_client.post(
            "/console/customers/999999/merge/", {"source": source.pk, "csrfmiddlewaretoken": token}
        ).status_code
        == 404
    )
    assert (
        console_client.post("/console/customers/merges/999999/undo/", {"csrfmiddlewaretoken": token}).status_code == 404
    )


def test_undo_refused_after_the_target_was_merged_on_is_a_409_with_the_reason(console_client, console_agent, pair):
    source, target, _ = pair
    actor = Actor.agent(console_agent)
    first = customer_merge(source=source, target=target, actor=actor)
    last = CustomerFactory()
    customer_merge(source=target, target=last, actor=actor)
    token = csrf_token(console_client, customer_url(last))

    response = console_client.post(f"/console/customers/merges/{first.pk}/undo/", {"csrfmiddlewaretoken": token})

    assert response.status_code == 409
    assert b"has been merged into another customer since; undo that merge first." in response.content
    assert CustomerMerge.objects.get(pk=first.pk).undone_at is None


@pytest.mark.parametrize("hidden_on", ["source", "target"])
def test_merging_a_customer_with_another_teams_ticket_is_404_and_moves_nothing(console_client, pair, hidden_on):
    # The agent (no team) sees unrouted tickets; a Shipping ticket is out of their sight
    source, target, ticket = pair
    hidden = TicketFactory(customer=source if hidden_on == "source" else target, team=TeamFactory(name="Shipping"))
    token = csrf_token(console_client, customer_url(source))

    looked_up = console_client.get(f"{customer_url(target)}merge/", {"source": str(source.pk)})
    posted = console_client.post(f"{customer_url(target)}merge/", {"source": source.pk, "csrfmiddlewaretoken": token})

    assert (looked_up.status_code, posted.status_code) == (404, 404)
    assert not CustomerMerge.objects.exists()
    assert Ticket.objects.get(pk=ticket.pk).customer_id == source.pk
    assert Ticket.objects.get(pk=hidden.pk).customer_id == hidden.customer_id
    assert Customer.objects.get(pk=source.pk).merged_into_id is None


def test_a_ticket_moved_to_another_team_while_the_merge_is_posted_is_404_and_moves_nothing(
    console_client, monkeypatch, pair
):
    # The page's check passes (every ticket unrouted); a ticket of the source moves to Shipping before the merge
    # locks the customers: the service refuses it under its locks
    source, target, ticket = pair
    token = csrf_token(console_client, customer_url(target))
    merge = customer_views.customer_merge

    def merge_after_a_move(*, source, target, actor):
        Ticket.objects.filter(pk=ticket.pk).update(team=TeamFactory(name="Shipping"))
        return merge(source=source, target=target, actor=actor)

    monkeypatch.setattr(customer_views, "customer_merge", merge_after_a_move)
    events_before = TimelineEvent.objects.count()

    response = console_client.post(f"{customer_url(target)}merge/", {"source": source.pk, "csrfmiddlewaretoken": token})

    assert response.status_code == 404
    assert "From the old address" not in response.content.decode()
    assert not CustomerMerge.objects.exists()
    assert Ticket.objects.get(pk=ticket.pk).customer_id == source.pk
    assert Customer.objects.get(pk=source.pk).merged_into_id is None
    assert TimelineEvent.objects.count() == events_before


def test_undoing_a_merge_that_moved_another_teams_ticket_is_404_and_moves_nothing(console_client, pair):
    source, target, ticket = pair
    hidden = TicketFactory(customer=source, team=TeamFactory(name="Shipping"))
    merge = customer_merge(source=source, target=target, actor=Actor.system())
    token = csrf_token(console_client, customer_url(target))

    response = console_client.post(f"/console/customers/merges/{merge.pk}/undo/", {"csrfmiddlewaretoken": token})

    assert response.status_code == 404
    assert CustomerMerge.objects.get().undone_at is None
    assert set(Ticket.objects.filter(pk__in=[ticket.pk, hidden.pk]).values_list("customer_id", flat=True)) == {
        target.pk
    }


def test_an_admin_merges_customers_whatever_team_their_tickets_are(console_admin_client, pair):
    source, target, _ = pair
    hidden = TicketFactory(customer=source, team=TeamFactory(name="Shipping"))
    token = csrf_token(console_admin_client, customer_url(target))

    response = console_admin_client.post(
        f"{customer_url(target)}merge/", {"source": source.pk, "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert Ticket.objects.get(pk=hidden.pk).customer_id == target.pk


def test_the_timeline_says_on_which_channel_a_ticket_was_opened_not_its_raw_parameters(console_client):
    customer = CustomerFactory()
    ticket = TicketFactory(customer=customer)
    TimelineEventFactory(
        ticket=ticket, customer=customer, type="ticket_created", params={"channel_id": 7, "channel_kind": "email"}
    )

    page = console_client.get(f"/console/customers/{customer.pk}/").content.decode()

    assert 'Ticket created</span>:\n  <span class="event-params">by email</span>' in page
    assert "channel_id" not in page
