import pytest
from rest_framework.test import APIClient

from tests.factories import AgentFactory, TeamFactory


@pytest.fixture
def billing(db):
    return TeamFactory(name="Billing")


@pytest.fixture
def member(billing):
    """An agent of the Billing team."""
    user = AgentFactory(username="bea")
    user.agent_profile.teams.set([billing])
    return user


@pytest.fixture
def member_client(member) -> APIClient:
    client = APIClient()
    client.force_authenticate(member)
    return client
