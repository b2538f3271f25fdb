"""The OpenAPI schema is valid and warning-free, and the docs page works offline: every asset is ours, served."""

import base64
from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from channels_app.models import InboundEvent
from channels_app.services.inbound_receive import inbound_event_receive

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


def _schema(client) -> dict:
    return client.get("/api/v1/schema", {"format": "json"}).json()


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("path", ["/api/v1/tickets", "/api/v1/customers", "/api/v1/inbound-events"])
def test_the_cursor_paginated_lists_are_documented_as_pages(client, path):
    """They answer {next, previous, results}: the schema said a bare array."""
    schema = _schema(client)
    operation = schema["paths"][path]["get"]

    page = _resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])

    assert page["type"] == "object"
    assert set(page["properties"]) == {"next", "previous", "results"}
    assert page["properties"]["next"]["nullable"] is True
    assert page["properties"]["results"]["type"] == "array"
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"cursor", "limit"}


@pytest.mark.parametrize(
    ("component", "field"),
    [("Message", "channel"), ("Message", "author"), ("TimelineEvent", "actor"), ("Ticket", "channel")],
)
def test_references_that_can_be_null_are_nullable(client, component, field):
    """A note has no channel, an inbound message no author, a system event no actor: the API answers null."""
    schema = _schema(client)
    properties = schema["components"]["schemas"][f"{component}Output"]["properties"]

    assert properties[field].get("nullable") is True


def test_every_operation_documents_its_errors_as_detail(client):
    schema = _schema(client)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"]

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"400", "401", "403"} | ({"404"} if "{" in path or method != "get" else set())
            if method in {"post", "patch", "put", "delete"}:
                expected |= {"409", "413", "415"}
            assert expected <= set(responses), (method, path, sorted(responses))
            for code, response in responses.items():
                if code >= "400":
                    body = response["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/Error"}, (method, path, code)


def test_a_cursor_that_is_not_ours_is_a_400_not_a_500(admin_client):
    """DRF passed a cursor's position to the query as it was: ``p=abc`` answered 500."""
    forged = base64.b64encode(b"p=abc").decode()

    for path in ("/api/v1/tickets", "/api/v1/customers", "/api/v1/inbound-events"):
        forged_response = admin_client.get(path, {"cursor": forged})
        garbage_response = admin_client.get(path, {"cursor": "not a cursor"})

        assert forged_response.status_code == 400, path
        assert forged_response.json()["code"] == "invalid_cursor"
        assert garbage_response.status_code == 400, path


def test_an_api_path_that_matches_nothing_answers_json(client):
    response = client.get("/api/v1/tickets/not-a-number")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found: no such API path."}
    assert client.get("/console/no-such-page/")["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("component", "required", "one_of"),
    [
        ("CustomerUpsertInputRequest", set(), ["external_id", "email", "phone"]),
        ("InboundApiMessageRequest", {"id", "sender"}, ["text", "html", "attachments"]),
        ("InboundApiSenderRequest", set(), ["external_id", "email", "phone", "chat_visitor"]),
        ("ChannelCreateInputRequest", {"kind", "name"}, None),
    ],
)
def test_request_bodies_say_which_keys_a_request_needs(client, component, required, one_of):
    """The schema called ``{}`` a valid customer, channel and message, and never named ``chat_visitor``: a client
    built from it was refused with a 400 it could not have known of."""
    body = _schema(client)["components"]["schemas"][component]

    assert set(body.get("required", [])) == required
    assert body.get("anyOf") == ([{"required": [key]} for key in one_of] if one_of else None)
    assert set(one_of or []) <= set(body["properties"])


def test_request_bodies_carry_the_limits_the_api_enforces(client, settings):
    components = _schema(client)["components"]["schemas"]
    message = components["InboundApiMessageRequest"]["properties"]
    sender = components["InboundApiSenderRequest"]["properties"]
    attachment = components["InboundApiAttachmentRequest"]["properties"]

    assert (message["id"]["maxLength"], message["id"]["pattern"]) == (255, r"\S")
    assert message["text"]["maxLength"] == settings.HELPDESK["MAX_MESSAGE_TEXT_CHARS"]
    assert message["subject"]["maxLength"] == 500
    assert message["ticket_id"]["minimum"] == 1
    assert sender["email"]["format"] == "email"
    assert sender["name"]["maxLength"] == 200
    assert attachment["content_base64"]["format"] == "byte"
    assert components["CustomerUpsertInputRequest"]["properties"]["email"]["format"] == "email"
    assert components["ContextEventRequest"]["properties"]["payload"]["type"] == "object"


def test_query_parameters_carry_their_bounds(client):
    paths = _schema(client)["paths"]

    def parameter(path, name):
        return next(p for p in paths[path]["get"]["parameters"] if p["name"] == name)["schema"]

    assert parameter("/api/v1/customers/{customer_id}/timeline", "limit") == {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
        "default": 50,
    }
    assert parameter("/api/v1/tickets", "customer") == {"type": "integer", "minimum": 1}


def test_an_api_channel_receipt_documents_every_field_it_answers(client, integration_client, api_channel):
    """The receipt answered ``customer_id``, ``url``, ``reason``... that the schema did not name."""
    components = _schema(client)["components"]["schemas"]
    message = {"id": "m-1", "sender": {"email": "ann@example.com"}, "text": "Hello"}

    posted = integration_client.post(f"/api/v1/channels/{api_channel.pk}/messages", message, format="json")
    polled = integration_client.get(posted.json()["url"])

    assert posted.status_code == 202
    assert set(posted.json()) == set(components["InboundEventPostReceipt"]["properties"])
    assert polled.status_code == 200
    assert set(polled.json()) == set(components["InboundEventReceipt"]["properties"])


def test_a_retried_event_answers_the_documented_202(client, admin_client, api_channel):
    """The schema said 200; the retry answers 202 (queued)."""
    event, _ = inbound_event_receive(channel=api_channel, provider_id="e-1", raw=b"{}", content_type="application/json")
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED)
    responses = _schema(client)["paths"]["/api/v1/inbound-events/{event_id}/retry"]["post"]["responses"]

    response = admin_client.post(f"/api/v1/inbound-events/{event.public_id}/retry")

    assert response.status_code == 202
    assert "202" in responses and "200" not in responses
