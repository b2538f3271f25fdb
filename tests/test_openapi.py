"""The OpenAPI schema is valid and warning-free, and the docs page works offline: every asset is ours, served."""

from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


class AssetCollector(HTMLParser):
    """The URLs of every <script src> and <link href> of a page."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


def assets_of(html: str) -> list[str]:
    collector = AssetCollector()
    collector.feed(html)
    return collector.urls


def test_schema_generates_valid_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"

    # --fail-on-warn turns every drf-spectacular warning (unresolvable type, unnamed enum...) into an error
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stdout=StringIO())

    text = out.read_text()
    assert text.startswith("openapi: 3.")
    assert "/api/v1/customers/{customer_id}/timeline:" in text


def test_schema_endpoint_describes_the_main_paths(client):
    response = client.get("/api/v1/schema", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Helpdesk API"
    paths = schema["paths"]
    assert set(paths["/api/v1/channels/{channel_id}/messages"]) == {"post"}
    assert set(paths["/api/v1/customers/{customer_id}/timeline"]) == {"get"}
    assert set(paths["/api/v1/tickets/{ticket_id}/replies"]) == {"post"}
    timeline_parameters = {p["name"] for p in paths["/api/v1/customers/{customer_id}/timeline"]["get"]["parameters"]}
    assert timeline_parameters == {"customer_id", "cursor", "limit"}
    assert schema["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An agent's personal token or an integration token (hd_...).",
    }


@pytest.fixture
def collected_static(settings, tmp_path):
    """Static files as production has them: collected (hashed and compressed) into STATIC_ROOT, served by
    WhiteNoise with DEBUG off and no finders."""
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    settings.DEBUG = False
    settings.WHITENOISE_USE_FINDERS = False
    call_command("collectstatic", "--noinput", verbosity=0)
    # A new client builds its middleware now, so WhiteNoise indexes the files just collected.
    return Client()


def test_docs_page_loads_only_local_static_assets_and_each_is_served(collected_static):
    client = collected_static

    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    html = response.content.decode()
    assets = assets_of(html)
    assert len(assets) >= 3  # the stylesheet, the bundle, the preset (and the favicon)
    # Swagger UI's init script is a file too (drf-spectacular's split view), so the page runs under the site's CSP
    assert "/api/v1/docs?script=" in assets
    assert "<style" not in html and "<script>" not in html
    for url in assets:
        assert url.startswith(("/static/", "/api/v1/docs?script")), url
        assert "://" not in url and not url.startswith("//"), url
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert b"".join(asset.streaming_content if asset.streaming else [asset.content]), url
    assert client.get("/api/v1/docs?script=")["Content-Type"] == "application/javascript"
    assert any(url.endswith(".js") for url in assets)
    assert any(url.endswith(".css") for url in assets)


def test_root_redirects_to_the_console(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/console/"
