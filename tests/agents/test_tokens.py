"""API tokens: only a digest is stored, the secret is shown once, scopes are checked at issue, use is recorded."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import AgentProfile, ApiToken, Team
from agents.services import api_token_create
from channels_app.models import Channel
from tests.conftest import bearer
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def stored_row(token_id: int) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM agents_apitoken WHERE id = %s", [token_id])
        return cursor.fetchone()


def test_only_a_sha256_digest_of_the_secret_is_stored(agent):
    issued = api_token_create(name="personal", scopes=[], user=agent)

    row = stored_row(issued.token.pk)

    assert issued.secret.startswith("hd_")
    assert len(issued.secret) > 40
    assert issued.token.digest == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert all(issued.secret not in str(value) for value in row)
    # The prefix kept to recognise a token is a short, non-secret label.
    assert issued.token.prefix == issued.secret[:10]


def test_api_issues_an_integration_token_and_shows_its_secret_once(admin_client):
    # When an admin issues a token
    response = admin_client.post("/api/v1/tokens", {"name": "crm", "scopes": ["customers:read"]}, format="json")

    # Then the answer holds the secret, and the database only its digest
    assert response.status_code == 201
    body = response.json()
    token = ApiToken.objects.get()
    assert body == {
        "id": token.pk,
        "name": "crm",
        "scopes": ["customers:read"],
        "channel_id": None,
        "token": body["token"],
    }
    assert body["token"].startswith("hd_")
    assert token.digest == hashlib.sha256(body["token"].encode()).hexdigest()
    assert all(body["token"] not in str(value) for value in stored_row(token.pk))
    assert token.user_id is None
    # And the secret works
    assert bearer(APIClient(), body["token"]).get("/api/v1/customers").status_code == 200


def test_each_token_gets_its_own_secret(admin_client):
    first = admin_client.post("/api/v1/tokens", {"name": "a", "scopes": ["customers:read"]}, format="json")
    second = admin_client.post("/api/v1/tokens", {"name": "b", "scopes": ["customers:read"]}, format="json")

    assert first.json()["token"] != second.json()["token"]
    assert ApiToken.objects.values("digest").distinct().count() == 2


def test_channel_token_names_its_channel(admin_client):
    channel = ChannelFactory(kind=Channel.Kind.API)

    response = admin_client.post(
        "/api/v1/tokens", {"name": "shop", "scopes": ["messages:write"], "channel_id": channel.pk}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["channel_id"] == channel.pk
    assert ApiToken.objects.get().channel == channel


def test_a_channel_id_in_other_scripts_digits_is_a_400_and_no_token(admin_client):
    channel = ChannelFactory(kind=Channel.Kind.API)
    arabic_indic = "".join(chr(0x0660 + int(digit)) for digit in str(channel.pk))  # what int() would accept

    response = admin_client.post(
        "/api/v1/tokens", {"name": "shop", "scopes": ["messages:write"], "channel_id": arabic_indic}, format="json"
    )

    assert response.status_code == 400
    assert "channel_id" in response.json()["errors"]
    assert ApiToken.objects.count() == 0


def test_team_ids_in_other_scripts_digits_are_a_400_and_no_agent(admin_client):
    team = Team.objects.create(name="Billing")
    arabic_indic = "".join(chr(0x0660 + int(digit)) for digit in str(team.pk))
    body = {"username": "carol", "password": "a-long-password-1", "team_ids": [arabic_indic]}

    response = admin_client.post("/api/v1/agents", body, format="json")

    assert response.status_code == 400
    assert "team_ids" in response.json()["errors"]
    assert not AgentProfile.objects.filter(user__username="carol").exists()


@pytest.mark.parametrize("body_extra", [{}, {"channel_id": None}], ids=["missing", "null"])
def test_messages_write_without_a_channel_is_a_400_and_no_token(admin_client, body_extra):
    response = admin_client.post(
        "/api/v1/tokens", {"name": "shop", "scopes": ["messages:write"], **body_extra}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["detail"] == "A token with messages:write must name its channel (channel_id)."
    assert ApiToken.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["tickets:delete"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"scopes": ["customers:read"]}, "name"),
    ],
)
def test_invalid_token_requests_are_a_400_and_no_token(admin_client, body, field):
    response = admin_client.post("/api/v1/tokens", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert ApiToken.objects.count() == 0


def test_token_for_an_unknown_channel_is_a_404_and_no_token(admin_client):
    response = admin_client.post(
        "/api/v1/tokens", {"name": "shop", "scopes": ["messages:write"], "channel_id": 99999}, format="json"
    )

    assert response.status_code == 404
    assert ApiToken.objects.count() == 0


def test_service_refuses_unknown_scopes():
    with pytest.raises(ValueError, match="unknown scopes"):
        api_token_create(name="x", scopes=["admin:all"])

    assert ApiToken.objects.count() == 0


def test_using_a_token_touches_last_used_at(agent):
    issued = api_token_create(name="personal", scopes=[], user=agent)
    assert issued.token.last_used_at is None

    before = timezone.now()
    response = bearer(APIClient(), issued.secret).get("/api/v1/me")

    assert response.status_code == 200
    issued.token.refresh_from_db()
    assert before <= issued.token.last_used_at <= timezone.now()


def test_last_used_at_is_written_at_most_once_a_minute(agent):
    issued = api_token_create(name="personal", scopes=[], user=agent)
    client = bearer(APIClient(), issued.secret)

    # A use 30 seconds after the last one leaves it alone; one two minutes after moves it.
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=recent)
    client.get("/api/v1/me")
    issued.token.refresh_from_db()
    assert issued.token.last_used_at == recent

    old = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=old)
    client.get("/api/v1/me")
    issued.token.refresh_from_db()
    assert issued.token.last_used_at > old + timedelta(minutes=1)


def test_a_refused_token_is_not_marked_used(agent):
    issued = api_token_create(name="personal", scopes=[], user=agent)
    ApiToken.objects.filter(pk=issued.token.pk).update(revoked_at=timezone.now())

    response = bearer(APIClient(), issued.secret).get("/api/v1/me")

    assert response.status_code == 401
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is None
