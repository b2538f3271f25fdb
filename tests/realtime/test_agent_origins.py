"""Which pages may open an agent's websocket: the desk's configured origins, or the page's own host (same origin)."""

import pytest

from realtime.origins import agent_origin_is_allowed


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://localhost:8000", "localhost:8000"),
        ("https://localhost", "localhost"),
    ],
)
def test_a_page_of_the_same_host_may_open_the_socket(settings, origin, host):
    settings.PUBLIC_BASE_URL = "https://desk.example"
    settings.CSRF_TRUSTED_ORIGINS = ["https://desk.example"]
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

    assert agent_origin_is_allowed(origin, host=host) is True


@pytest.mark.parametrize(
    ("origin", "host", "why"),
    [
        ("https://evil.example", "localhost:8000", "another site's page, whatever host it targets"),
        ("http://localhost:8001", "localhost:8000", "another port is another origin"),
        ("http://evil.example", "evil.example", "a host outside ALLOWED_HOSTS"),
        ("null", "localhost:8000", "an opaque origin"),
        ("", "localhost:8000", "no origin"),
    ],
)
def test_other_pages_are_refused(settings, origin, host, why):
    settings.PUBLIC_BASE_URL = "https://desk.example"
    settings.CSRF_TRUSTED_ORIGINS = ["https://desk.example"]
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

    assert agent_origin_is_allowed(origin, host=host) is False, why


def test_the_configured_origins_need_no_host(settings):
    settings.PUBLIC_BASE_URL = "https://desk.example"
    settings.CSRF_TRUSTED_ORIGINS = ["https://desk.example", "https://*.corp.example"]

    assert agent_origin_is_allowed("https://desk.example") is True
    assert agent_origin_is_allowed("https://eu.corp.example") is True
    assert agent_origin_is_allowed("https://evil.example") is False
