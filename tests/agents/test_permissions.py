"""Who may call what: admins configure, agents work tickets, integration tokens do only what their scopes say."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import AgentProfile, ApiToken, Team
from agents.services import api_token_create, api_token_revoke
from channels_app.models import Channel, InboundEvent
from tests.conftest import bearer
from tests.factories import AgentFactory, ChannelFactory, TicketFactory

pytestmark = pytest.mark.django_db

ADMIN_ONLY = "Only administrators may do this."


def admin_only_requests(channel: Channel) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", "/api/v1/channels", None),
        ("post", "/api/v1/channels", {"kind": "api", "name": "New shop"}),
        ("get", f"/api/v1/channels/{channel.pk}", None),
        ("patch", f"/api/v1/channels/{channel.pk}", {"name": "Renamed"}),
        ("get", "/api/v1/agents", None),
        (
            "post",
            "/api/v1/agents",
            {"username": "newbie", "password": "long-enough-password", "role": "admin"},
        ),
        ("post", "/api/v1/tokens", {"name": "crm", "scopes": ["customers:read"]}),
        ("get", "/api/v1/inbound-events", None),
        ("post", "/api/v1/teams", {"name": "Escalations"}),
    ]


ENDPOINT_IDS = [
    "list-channels",
    "create-channel",
    "get-channel",
    "change-channel",
    "list-agents",
    "create-agent",
    "create-token",
    "inbound-events",
    "create-team",
]


def call(client: APIClient, method: str, path: str, body: dict | None):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


def snapshot() -> dict:
    """What an admin-only call could have written."""
    return {
        "channels": sorted(Channel.objects.values_list("pk", "name")),
        "users": sorted(AgentProfile.objects.values_list("user__username", "role")),
        "tokens": ApiToken.objects.count(),
        "teams": sorted(Team.objects.values_list("name", flat=True)),
    }


@pytest.fixture
def channel(db):
    return ChannelFactory(kind=Channel.Kind.API, name="Shop")


def personal_token_client(user) -> APIClient:
    return bearer(APIClient(), api_token_create(name="personal", scopes=[], user=user).secret)


def session_client(user) -> APIClient:
    client = APIClient()
    assert client.login(username=user.username, password="correct-horse-battery")
    return client


@pytest.mark.parametrize("index", range(9), ids=ENDPOINT_IDS)
@pytest.mark.parametrize("how", ["personal_token", "session"])
def test_agent_is_refused_on_admin_endpoints_and_nothing_changes(agent, channel, index, how):
    # Given an agent calling with their personal token or their session
    client = personal_token_client(agent) if how == "personal_token" else session_client(agent)
    method, path, body = admin_only_requests(channel)[index]
    before = snapshot()

    # When they call an admin-only endpoint
    response = call(client, method, path, body)

    # Then it is refused, and nothing was written
    assert response.status_code == 403
    assert response.json() == {"detail": ADMIN_ONLY}
    assert snapshot() == before


@pytest.mark.parametrize("index", range(9), ids=ENDPOINT_IDS)
def test_admin_token_may_use_admin_endpoints(admin_user, channel, index):
    client = personal_token_client(admin_user)
    method, path, body = admin_only_requests(channel)[index]

    response = call(client, method, path, body)

    expected = 201 if method == "post" else 200
    assert response.status_code == expected, response.content


def test_admin_token_writes_what_it_asked_for(admin_user, channel):
    client = personal_token_client(admin_user)

    for method, path, body in admin_only_requests(channel):
        call(client, method, path, body)

    assert sorted(Channel.objects.values_list("name", flat=True)) == ["New shop", "Renamed"]
    assert AgentProfile.objects.get(user__username="newbie").role == "admin"
    assert Team.objects.filter(name="Escalations").exists()
    assert ApiToken.objects.filter(name="crm", user=None, scopes=["customers:read"]).exists()


@pytest.mark.parametrize(
    ("scopes", "with_channel"),
    [(["customers:read", "customers:write"], False), (["messages:write"], True)],
    ids=["customers-token", "channel-token"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/tickets"), ("get", "/api/v1/me"), ("get", "/api/v1/channels"), ("get", "/api/v1/teams")],
)
def test_integration_token_cannot_use_agent_endpoints(channel, scopes, with_channel, method, path):
    token = api_token_create(name="crm", scopes=scopes, channel=channel if with_channel else None)
    TicketFactory()

    response = getattr(bearer(APIClient(), token.secret), method)(path)

    assert response.status_code == 403
    assert "results" not in response.json()


def test_integration_token_cannot_reply_to_a_ticket(customers_token):
    ticket = TicketFactory(team=None)

    response = bearer(APIClient(), customers_token).post(
        f"/api/v1/tickets/{ticket.pk}/replies", {"text": "Hi"}, format="json"
    )

    assert response.status_code == 403
    assert ticket.messages.count() == 0


def test_channel_token_may_only_post_to_its_own_channel(channel, channel_token):
    other = ChannelFactory(kind=Channel.Kind.API)
    payload = {"id": "m-1", "sender": {"external_id": "u-1"}, "text": "Hi"}

    response = bearer(APIClient(), channel_token).post(f"/api/v1/channels/{other.pk}/messages", payload, format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "This token may not post to this channel."}
    assert InboundEvent.objects.count() == 0


def test_revoked_token_is_a_401(agent):
    issued = api_token_create(name="personal", scopes=[], user=agent)
    client = bearer(APIClient(), issued.secret)
    assert client.get("/api/v1/tickets").status_code == 200

    api_token_revoke(token=issued.token)
    response = client.get("/api/v1/tickets")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked token."}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_revoked_integration_token_is_a_401(customers_token):
    ApiToken.objects.update(revoked_at=timezone.now())

    response = bearer(APIClient(), customers_token).get("/api/v1/customers")

    assert response.status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer hd_not-a-real-token", "Bearer", "Bearer two parts", "bearer hd_also-wrong"],
)
def test_unknown_or_malformed_bearer_token_is_a_401(header):
    response = APIClient().get("/api/v1/tickets", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401


def test_no_credentials_is_a_401():
    response = APIClient().get("/api/v1/tickets")

    assert response.status_code == 401


@pytest.mark.parametrize("how", ["personal_token", "session"])
def test_user_without_agent_profile_is_refused_tickets(django_user_model, how):
    user = django_user_model.objects.create_user(username="visitor", password="correct-horse-battery")
    TicketFactory(team=None)
    client = personal_token_client(user) if how == "personal_token" else session_client(user)

    response = client.get("/api/v1/tickets")

    assert response.status_code == 403
    assert response.json() == {"detail": "Only agents may do this."}


def test_inactive_agents_token_is_a_401():
    agent = AgentFactory(is_active=False)
    client = personal_token_client(agent)

    response = client.get("/api/v1/tickets")

    assert response.status_code == 401
    assert response.json() == {"detail": "User inactive."}


def test_agent_deactivated_after_the_token_was_issued_is_refused_at_once(agent):
    client = personal_token_client(agent)
    assert client.get("/api/v1/tickets").status_code == 200

    type(agent).objects.filter(pk=agent.pk).update(is_active=False)

    assert client.get("/api/v1/tickets").status_code == 401


def test_agent_may_list_teams_but_not_create_one(agent_client):
    Team.objects.create(name="Billing")

    listed = agent_client.get("/api/v1/teams")
    created = agent_client.post("/api/v1/teams", {"name": "Shadow"}, format="json")

    assert listed.status_code == 200
    assert [team["name"] for team in listed.json()] == ["Billing"]
    assert created.status_code == 403
    assert not Team.objects.filter(name="Shadow").exists()
