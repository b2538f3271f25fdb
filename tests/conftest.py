import os

import pytest
from rest_framework.test import APIClient

from agents.models import ApiToken
from agents.services import api_token_create
from channels_app.models import Channel
from chat.channel_cache import chat_channel_cache_clear
from tests.factories import AdminFactory, AgentFactory, ChannelFactory

REQUIRE_SERVICES = os.environ.get("HELPDESK_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def services_or_skip(*, need_postgres: bool = False, need_redis: bool = False) -> None:
    """Tests that need PostgreSQL or Redis skip on a laptop without them, and fail in CI
    (HELPDESK_REQUIRE_SERVICES=1), where a missing service is a broken run, not a reason to pass."""
    missing = []
    if need_postgres and not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        missing.append("DATABASE_URL (PostgreSQL)")
    if need_redis and not os.environ.get("REDIS_URL"):
        missing.append("REDIS_URL")
    if missing:
        message = "needs " + " and ".join(missing)
        if REQUIRE_SERVICES:
            pytest.fail(message + " (HELPDESK_REQUIRE_SERVICES is set)")
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _chat_channel_cache_cleared():
    """Each test starts with no chat channel cached by this process (chat.channel_cache): a channel created by an
    earlier test and since rolled back must not answer. Within a test, a channel changed with a queryset update
    (no save signal) is read again only after ``chat_channel_cache_clear()``, as another server process would see
    it only after the cache's seconds."""
    chat_channel_cache_clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def agent(db):
    return AgentFactory()


@pytest.fixture
def admin_user(db):
    return AdminFactory()


@pytest.fixture
def agent_client(agent) -> APIClient:
    client = APIClient()
    client.force_authenticate(agent)
    return client


@pytest.fixture
def admin_client(admin_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture
def api_channel(db) -> Channel:
    return ChannelFactory(kind=Channel.Kind.API, name="Shop backend")


def bearer(client: APIClient, secret: str) -> APIClient:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def channel_token(api_channel) -> str:
    """The secret of an integration token that may post messages to ``api_channel``."""
    return api_token_create(name="shop", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=api_channel).secret


@pytest.fixture
def integration_client(channel_token) -> APIClient:
    return bearer(APIClient(), channel_token)


@pytest.fixture
def customers_token(db) -> str:
    return api_token_create(name="crm", scopes=[ApiToken.Scope.CUSTOMERS_READ, ApiToken.Scope.CUSTOMERS_WRITE]).secret
