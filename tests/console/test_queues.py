"""Queue pages: membership of each queue, filters, search, keyset pages, counts, visibility, escaping, htmx."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from channels_app.models import Channel
from tests.conftest import services_or_skip
from tests.factories import (
    AgentFactory,
    ChannelFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
)
from tickets.models import Tag, Ticket
from tickets.selectors.search import ticket_search_candidates

SEARCH_INDEXES = (
    "ticket_subject_search_idx",
    "message_text_search_idx",
    "customer_name_search_idx",
)
QUEUE_SLUGS = ["mine", "unassigned", "teams", "open", "pending", "sla-at-risk", "all"]


def listed(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-ticket-row data-ticket-id="(\d+)"', response.content.decode())]


def next_link(response) -> str | None:
    match = re.search(r'<a class="button" rel="next" href="([^"]+)">Next</a>', response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


def queue_count(response, slug: str) -> str:
    match = re.search(rf'<span class="queue-count" data-queue="{slug}"[^>]*>([^<]*)</span>', response.content.decode())
    assert match, f"no count for {slug}"
    return match.group(1)


@pytest.fixture
def team(db):
    return TeamFactory(name="Billing")


@pytest.fixture
def other_team(db):
    return TeamFactory(name="Shipping")


@pytest.fixture
def member(console_agent, team):
    """The console agent, as a member of ``team``."""
    console_agent.agent_profile.teams.add(team)
    return console_agent


@pytest.fixture
def tickets(member, team, other_team):
    """One ticket per situation that decides queue membership, by name."""
    now = timezone.now()
    colleague = AgentFactory()
    at_risk_time = now - timedelta(hours=5)
    made = {
        "mine": TicketFactory(assignee=member, status=Ticket.Status.OPEN),
        "unassigned": TicketFactory(status=Ticket.Status.NEW),
        "team_colleague": TicketFactory(team=team, assignee=colleague, status=Ticket.Status.OPEN),
        "pending": TicketFactory(status=Ticket.Status.PENDING, assignee=colleague),
        "on_hold_team": TicketFactory(status=Ticket.Status.ON_HOLD, team=team, assignee=colleague),
        "solved": TicketFactory(status=Ticket.Status.SOLVED),
        "closed_mine": TicketFactory(status=Ticket.Status.CLOSED, assignee=member),
        "at_risk": TicketFactory(
            priority=Ticket.Priority.URGENT,
            assignee=colleague,
            last_customer_message_at=at_risk_time,
            last_message_at=at_risk_time,
        ),
        # Answered by an agent after the customer wrote: not at risk.
        "answered_high": TicketFactory(
            priority=Ticket.Priority.HIGH,
            assignee=colleague,
            last_customer_message_at=at_risk_time,
            first_response_at=now - timedelta(hours=1),
            last_message_at=now - timedelta(hours=1),
        ),
        # Waiting, but only 2 hours (threshold 4) or only normal priority or pending on the customer: not at risk.
        "recent_high": TicketFactory(
            priority=Ticket.Priority.HIGH,
            assignee=colleague,
            last_customer_message_at=now - timedelta(hours=2),
            last_message_at=now - timedelta(hours=2),
        ),
        "old_normal": TicketFactory(
            priority=Ticket.Priority.NORMAL,
            assignee=colleague,
            last_customer_message_at=at_risk_time,
            last_message_at=at_risk_time,
        ),
        "old_high_pending": TicketFactory(
            priority=Ticket.Priority.HIGH,
            status=Ticket.Status.PENDING,
            assignee=colleague,
            last_customer_message_at=at_risk_time,
            last_message_at=at_risk_time,
        ),
        # Invisible to the agent: another team's ticket, assigned to someone else.
        "other_team": TicketFactory(team=other_team, assignee=colleague, status=Ticket.Status.OPEN),
    }
    target = made["unassigned"]
    made["merged"] = TicketFactory(status=Ticket.Status.OPEN, merged_into=target)
    return made


EXPECTED = {
    "mine": {"mine"},
    "unassigned": {"unassigned"},
    "teams": {"team_colleague", "on_hold_team"},
    "open": {
        "mine",
        "unassigned",
        "team_colleague",
        "pending",
        "on_hold_team",
        "at_risk",
        "answered_high",
        "recent_high",
        "old_normal",
        "old_high_pending",
    },
    "pending": {"pending", "old_high_pending"},
    "sla-at-risk": {"at_risk"},
}
EXPECTED["all"] = EXPECTED["open"] | {"solved", "closed_mine"}


@pytest.mark.parametrize("slug", QUEUE_SLUGS)
def test_each_queue_lists_exactly_its_tickets(console_client, tickets, slug):
    response = console_client.get(f"/console/queues/{slug}/")

    assert response.status_code == 200
    names = {pk: name for name, ticket in tickets.items() for pk in [ticket.pk]}
    assert {names[pk] for pk in listed(response)} == EXPECTED[slug]


def test_sidebar_counts_every_queue(console_client, tickets):
    response = console_client.get("/console/queues/open/")

    for slug in QUEUE_SLUGS:
        assert queue_count(response, slug) == str(len(EXPECTED[slug])), slug


def test_counts_are_capped(console_client, member, monkeypatch):
    monkeypatch.setattr("console.views.queues.COUNT_CAP", 2)
    TicketFactory.create_batch(3, assignee=member)

    response = console_client.get("/console/queues/mine/")

    assert queue_count(response, "mine") == "2+"
    assert queue_count(response, "pending") == "0"
    assert len(listed(response)) == 3  # the cap is the sidebar's, not the list's


def test_sla_at_risk_page_states_its_rule(console_client, settings):
    settings.HELPDESK = {**settings.HELPDESK, "SLA_AT_RISK_HOURS": 6}

    response = console_client.get("/console/queues/sla-at-risk/")

    assert "wrote more than 6 hours ago and has had no answer from an agent since" in response.content.decode()


def test_sla_at_risk_threshold_comes_from_settings(console_client, tickets, settings):
    settings.HELPDESK = {**settings.HELPDESK, "SLA_AT_RISK_HOURS": 1}

    response = console_client.get("/console/queues/sla-at-risk/")

    assert set(listed(response)) == {tickets["at_risk"].pk, tickets["recent_high"].pk}


def test_rows_carry_the_contract_markup_and_columns(console_client, member, team):
    channel = ChannelFactory(kind=Channel.Kind.SMS, name="Support SMS")
    customer = CustomerFactory(name="Ada Lovelace")
    ticket = TicketFactory(
        customer=customer,
        channel=channel,
        assignee=member,
        team=team,
        subject="Parcel lost",
        priority=Ticket.Priority.HIGH,
        last_message_at=timezone.now() - timedelta(hours=3),
    )
    ticket.tags.add(Tag.objects.create(name="vip"), Tag.objects.create(name="shipping"))
    member.agent_profile.display_name = "Grace H"
    member.agent_profile.save()

    html = console_client.get("/console/queues/mine/").content.decode()

    row = re.search(rf'<tr data-ticket-row data-ticket-id="{ticket.pk}".*?</tr>', html, re.S).group(0)
    assert f'<a data-open href="/console/tickets/{ticket.pk}/">Parcel lost</a>' in row
    assert '<span class="badge badge-sms">SMS</span>' in row
    for text in ("Ada Lovelace", "Open", "High", "Grace H", "Billing", ">shipping<", ">vip<", "3\xa0hours ago"):
        assert text in row, text
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:[\d.]+\+00:00"', row)
    assert '<table class="list" id="queue-table">' in html
    assert '<input type="search" name="q"' in html and 'id="queue-search"' in html


def test_list_is_newest_activity_first_and_tickets_without_messages_use_their_creation(console_client, member):
    now = timezone.now()
    old = TicketFactory(assignee=member, last_message_at=now - timedelta(days=2))
    new = TicketFactory(assignee=member, last_message_at=now - timedelta(minutes=1))
    never = TicketFactory(assignee=member, last_message_at=None)  # created just now: newest
    Ticket.objects.filter(pk=never.pk).update(created_at=now - timedelta(hours=1))

    assert listed(console_client.get("/console/queues/mine/")) == [new.pk, never.pk, old.pk]


# --- Filters ---------------------------------------------------------------------------------------------------


@pytest.fixture
def varied(member, team, other_team):
    """Visible active tickets that differ in one filterable property each."""
    colleague = AgentFactory()
    member.agent_profile.teams.add(other_team)
    email = ChannelFactory(kind=Channel.Kind.EMAIL)
    sms = ChannelFactory(kind=Channel.Kind.SMS)
    made = {
        "email_urgent": TicketFactory(channel=email, priority=Ticket.Priority.URGENT, team=team),
        "sms_pending": TicketFactory(channel=sms, status=Ticket.Status.PENDING, team=other_team),
        "tagged": TicketFactory(channel=email, assignee=colleague),
        "plain": TicketFactory(channel=None, team=None, assignee=member),
    }
    made["tagged"].tags.add(Tag.objects.create(name="refund"))
    return made, colleague


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"channel": "email"}, {"email_urgent", "tagged"}),
        ({"channel": "sms"}, {"sms_pending"}),
        ({"status": "pending"}, {"sms_pending"}),
        ({"priority": "urgent"}, {"email_urgent"}),
        ({"tag": "refund"}, {"tagged"}),
        ({"tag": "no-such-tag"}, set()),
        ({"team": "TEAM"}, {"email_urgent"}),
        ({"team": "none"}, {"tagged", "plain"}),
        ({"assignee": "COLLEAGUE"}, {"tagged"}),
        ({"assignee": "none"}, {"email_urgent", "sms_pending"}),
        ({"channel": "email", "priority": "urgent"}, {"email_urgent"}),
    ],
)
def test_filters(console_client, varied, team, params, expected):
    made, colleague = varied
    params = {
        key: {"TEAM": str(team.pk), "COLLEAGUE": str(colleague.pk)}.get(value, value) for key, value in params.items()
    }

    response = console_client.get("/console/queues/open/", params)

    assert response.status_code == 200
    names = {ticket.pk: name for name, ticket in made.items()}
    assert {names[pk] for pk in listed(response)} == expected
    html = response.content.decode()
    for key, value in params.items():  # the form shows the filter it applied
        assert re.search(rf'<option value="{re.escape(value)}" selected>', html) or f'value="{value}"' in html, key


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "bogus"}, "Unknown status “bogus”"),
        ({"team": "abc"}, "Unknown team “abc”"),
        ({"team": "999999"}, "Unknown team “999999”"),
        ({"assignee": "1 OR 1=1"}, "Unknown agent “1 OR 1=1”"),
        ({"channel": "fax"}, "Unknown channel “fax”"),
        ({"priority": "meh"}, "Unknown priority “meh”"),
        ({"q": "x" * 201}, "at most 200 characters"),
    ],
)
def test_invalid_filter_values_get_a_message_next_to_the_field(console_client, member, params, message):
    TicketFactory(assignee=member)

    response = console_client.get("/console/queues/mine/", params)

    assert response.status_code == 400
    html = response.content.decode()
    field = next(iter(params))
    field_id = "queue-search" if field == "q" else f"filter-{field}"
    assert re.search(rf'<span class="field-error"[^>]*>[^<]*{re.escape(message)}', html), html
    assert f'id="{field_id}"' in html
    assert listed(response) == []
    assert 'data-queue="mine"' in html  # the rest of the page is there


def test_unknown_queue_is_404(console_client):
    assert console_client.get("/console/queues/everything/").status_code == 404


# --- Search ----------------------------------------------------------------------------------------------------


@pytest.fixture
def searchable(member):
    alice = CustomerFactory(name="Alice Smith")
    IdentityFactory(customer=alice, value="alice@example.com")
    bob = CustomerFactory(name="Robert Jones")
    IdentityFactory(customer=bob, kind="phone", value="+14155550123")
    made = {
        "by_subject": TicketFactory(customer=bob, subject="Invoice missing for March"),
        "by_text": TicketFactory(customer=bob, subject="Question"),
        "by_customer": TicketFactory(customer=alice, subject="Hello"),
        "nothing": TicketFactory(customer=CustomerFactory(name="Carol"), subject="Other"),
    }
    MessageFactory(ticket=made["by_text"], text="The parcel arrived damaged, I want a replacement")
    MessageFactory(ticket=made["nothing"], text="Thanks for the quick answer")
    return made


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("invoice", {"by_subject"}),
        ("damaged replacement", {"by_text"}),
        ("alice@example.com", {"by_customer"}),
        ("Smith", {"by_customer"}),
        ("+14155550123", {"by_subject", "by_text"}),
        ("zebra", set()),
    ],
)
def test_search_on_postgres(console_client, searchable, query, expected):
    services_or_skip(need_postgres=True)

    response = console_client.get("/console/queues/open/", {"q": query})

    assert response.status_code == 200
    names = {ticket.pk: name for name, ticket in searchable.items()}
    assert {names[pk] for pk in listed(response)} == expected
    assert f'value="{query}"' in response.content.decode()


@pytest.mark.parametrize("query", ["invoice", "damaged replacement", "alice@example.com", "Smith", "+1 415 555 0123"])
def test_search_of_common_words_walks_the_queue_with_the_same_results(console_client, searchable, monkeypatch, query):
    """Beyond SEARCH_CANDIDATES matches the search tests each ticket of the queue instead of listing ids first."""
    services_or_skip(need_postgres=True)
    listed_by_ids = listed(console_client.get("/console/queues/open/", {"q": query}))
    monkeypatch.setattr("tickets.selectors.search.SEARCH_CANDIDATES", 0)

    listed_by_walk = listed(console_client.get("/console/queues/open/", {"q": query}))

    assert listed_by_walk == listed_by_ids
    assert listed_by_ids


def test_search_uses_the_full_text_indexes_on_postgres(searchable):
    """The search expressions are those of migration 0005's indexes (checked by name in the plan, with sequential
    scans off so that the small test tables do not make PostgreSQL prefer them)."""
    services_or_skip(need_postgres=True)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")

    plan = ticket_search_candidates(text="invoice").explain()

    for index in SEARCH_INDEXES:
        assert index in plan, plan


def test_a_partial_address_matches_on_sqlites_substring_fallback_and_not_in_full_text(console_client, searchable):
    # PostgreSQL matches addresses whole (normalised, through the identity index); SQLite's fallback is a
    # substring search over everything. `make test` without DATABASE_URL runs the one, CI the other.
    response = console_client.get("/console/queues/open/", {"q": "alice@exa"})

    expected = [] if connection.vendor == "postgresql" else [searchable["by_customer"].pk]
    assert listed(response) == expected


# --- Keyset pages ------------------------------------------------------------------------------------------------


def test_pages_follow_the_keyset_without_duplicates_or_gaps_on_equal_times(console_client, member):
    same = timezone.now() - timedelta(hours=1)
    # 130 tickets, in runs of equal activity times that straddle the page boundaries (50 per page).
    created = [
        TicketFactory(assignee=member, last_message_at=same - timedelta(minutes=index // 45)) for index in range(130)
    ]
    expected = [t.pk for t in sorted(created, key=lambda t: (t.last_message_at, t.pk), reverse=True)]

    seen, url, pages = [], "/console/queues/mine/", 0
    while url:
        response = console_client.get(url)
        assert response.status_code == 200
        assert "OFFSET" not in url
        seen += listed(response)
        url = next_link(response)
        pages += 1

    assert pages == 3
    assert seen == expected


def test_next_page_link_keeps_the_filters(console_client, member):
    TicketFactory.create_batch(51, assignee=member, priority=Ticket.Priority.HIGH)
    TicketFactory.create_batch(3, assignee=member, priority=Ticket.Priority.LOW)

    first = console_client.get("/console/queues/mine/", {"priority": "high"})
    second = console_client.get(next_link(first))

    assert "priority=high" in next_link(first)
    assert len(listed(first)) == 50 and len(listed(second)) == 1
    assert next_link(second) is None


@pytest.mark.parametrize(
    "cursor", ["garbage!", "bm9wZQ", "MjAyNi0wMS0wMVQwMDowMDowMHwx"[:-3], "MjAyNi0wMS0wMVQwMDowMDowMHwx"]
)
def test_tampered_cursor_is_a_clear_400(console_client, member, cursor):
    TicketFactory(assignee=member)

    response = console_client.get("/console/queues/mine/", {"after": cursor})

    assert response.status_code == 400
    html = response.content.decode()
    assert "This page link is not valid" in html
    assert re.search(r'<a href="/console/queues/mine/\??">Go to the first page</a>', html), html
    assert listed(response) == []


# --- Visibility ----------------------------------------------------------------------------------------------------


def test_agent_never_sees_another_teams_tickets_in_any_queue_or_search(console_client, member, team, other_team):
    colleague = AgentFactory()
    long_ago = timezone.now() - timedelta(days=1)
    hidden = [
        TicketFactory(team=other_team, subject="Secret hidden merger", status=Ticket.Status.NEW),
        TicketFactory(
            team=other_team, subject="Secret hidden merger", status=Ticket.Status.PENDING, assignee=colleague
        ),
        TicketFactory(
            team=other_team,
            subject="Secret hidden merger",
            priority=Ticket.Priority.URGENT,
            last_customer_message_at=long_ago,
            last_message_at=long_ago,
        ),
        TicketFactory(team=other_team, subject="Secret hidden merger", status=Ticket.Status.SOLVED),
    ]
    MessageFactory(ticket=hidden[0], text="secret merger details")
    visible = TicketFactory(team=team, subject="Secret visible", status=Ticket.Status.NEW)

    for slug in QUEUE_SLUGS:
        for params in ({}, {"q": "secret"}, {"q": "merger"}, {"team": str(other_team.pk)}):
            response = console_client.get(f"/console/queues/{slug}/", params)
            assert response.status_code == 200
            assert set(listed(response)) <= {visible.pk}, (slug, params)
            assert "Secret hidden merger" not in response.content.decode()
    response = console_client.get("/console/queues/open/", {"q": "secret"})
    assert listed(response) == [visible.pk]
    assert queue_count(response, "open") == "1"
    assert queue_count(response, "all") == "1"


def test_admin_sees_every_team(console_admin_client, team, other_team):
    mine = [TicketFactory(team=team), TicketFactory(team=other_team), TicketFactory(team=None)]

    response = console_admin_client.get("/console/queues/open/")

    assert set(listed(response)) == {t.pk for t in mine}


def test_anonymous_is_sent_to_login_and_non_agents_refused(db, django_user_model):
    assert Client().get("/console/queues/open/")["Location"].startswith("/console/login/")
    user = django_user_model.objects.create_user(username="shopper", password="x")
    client = Client()
    client.force_login(user)
    assert client.get("/console/queues/open/").status_code == 403


# --- Safety, htmx, query count -------------------------------------------------------------------------------------


def test_get_needs_no_csrf_token_and_post_is_refused(console_client, member):
    TicketFactory(assignee=member)

    assert console_client.get("/console/queues/mine/").status_code == 200  # the client enforces CSRF checks
    assert console_client.post("/console/queues/mine/").status_code in (403, 405)


def test_subjects_and_names_are_escaped(console_client, member):
    customer = CustomerFactory(name='<img src=x onerror="alert(2)">')
    TicketFactory(assignee=member, customer=customer, subject="<script>alert(1)</script>")
    Tag.objects.create(name="<b>tag</b>").tickets.add(Ticket.objects.get(subject__startswith="<script>"))

    html = console_client.get("/console/queues/mine/", {"q": "<script>"}).content.decode()
    html += console_client.get("/console/queues/mine/").content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<img src=x onerror="alert(2)">' not in html
    assert "<b>tag</b>" not in html and "&lt;b&gt;tag&lt;/b&gt;" in html


def test_htmx_refresh_returns_only_the_table_and_the_counts(console_client, member):
    ticket = TicketFactory(assignee=member)

    response = console_client.get("/console/queues/mine/", {"priority": "normal"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="queue-search"' not in html
    assert listed(response) == [ticket.pk]
    assert '<ul id="queue-nav-list" class="queue-nav-list" hx-swap-oob="true">' in html
    assert "HX-Request" in response["Vary"]


def test_full_page_points_the_refresh_at_itself(console_client, member):
    html = console_client.get("/console/queues/mine/", {"priority": "high"}).content.decode()

    assert '<div id="queue-results" data-refresh-url="/console/queues/mine/?priority=high"' in html
    assert 'hx-get="/console/queues/mine/?priority=high"' in html and 'hx-trigger="every 30s' in html


def _populate(size: int, *, member, team, other_team) -> None:
    channels = [ChannelFactory(kind=kind) for kind in (Channel.Kind.EMAIL, Channel.Kind.SMS, Channel.Kind.CHAT)]
    tags = [Tag.objects.create(name=f"tag-{n}") for n in range(3)]
    agents = [member, AgentFactory(), AgentFactory()]
    for index in range(size):
        ticket = TicketFactory(
            channel=channels[index % 3],
            assignee=agents[index % 3],
            team=(team, None, other_team)[index % 3],
            subject=f"Invoice {index}",
            priority=Ticket.Priority.HIGH if index % 2 else Ticket.Priority.URGENT,
            last_customer_message_at=timezone.now() - timedelta(hours=10),
            last_message_at=timezone.now() - timedelta(hours=10, minutes=index),
        )
        ticket.tags.add(*tags[: 1 + index % 3])
        MessageFactory(ticket=ticket, text=f"invoice text {index}")


@pytest.mark.parametrize("size", [3, 60])
@pytest.mark.parametrize(
    ("slug", "params"),
    [
        ("mine", {}),
        ("open", {}),
        ("teams", {"tag": "tag-0"}),
        ("sla-at-risk", {}),
        ("open", {"q": "invoice", "priority": "high", "channel": "sms"}),
        ("all", {"assignee": "none", "team": "none"}),
    ],
)
def test_query_count_does_not_grow_with_the_data(
    console_client, member, team, other_team, django_assert_max_num_queries, size, slug, params
):
    _populate(size, member=member, team=team, other_team=other_team)

    # session, user, agent profile, the agent's teams, the filter options (teams, agents, tags), the sidebar counts
    # (one query for every queue), the tickets, their tags; with a search, the matching ticket ids first.
    with django_assert_max_num_queries(11 if "q" in params else 10):
        response = console_client.get(f"/console/queues/{slug}/", params)

    assert response.status_code == 200
    if slug in ("mine", "open", "sla-at-risk"):
        assert listed(response)  # the page did list tickets (and their tags), so the bound covers them
