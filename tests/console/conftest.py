"""Console fixtures: Django test clients signed in through the session, as a browser is (CSRF checks on)."""

import pytest
from django.test import Client

from tests.factories import AdminFactory, AgentFactory


@pytest.fixture
def console_agent(db):
    return AgentFactory()


@pytest.fixture
def console_admin(db):
    return AdminFactory()


@pytest.fixture
def console_client(console_agent) -> Client:
    """An agent's browser: CSRF enforced, so every form test posts the token as a browser does."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(console_agent)
    return client


@pytest.fixture
def console_admin_client(console_admin) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(console_admin)
    return client


def csrf_token(client: Client, url: str) -> str:
    """The CSRF token a page gives the browser (GET ``url`` first, as the browser loads the form)."""
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.cookies["csrftoken"].value if "csrftoken" in response.cookies else client.cookies["csrftoken"].value
