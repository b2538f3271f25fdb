"""Chat fixtures: a chat channel for https://shop.example with an identity secret, and a widget client that
speaks to its API as the widget's script on that site would."""

import itertools

import pytest
from rest_framework.test import APIClient

from channels_app.models import Channel
from channels_app.services.channels import channel_create

SHOP_ORIGIN = "https://shop.example"
IDENTITY_SECRET = "shop-identity-secret-4f1d2c"
_client_ids = itertools.count(1)


@pytest.fixture
def chat_channel(db) -> Channel:
    return channel_create(
        kind=Channel.Kind.CHAT,
        name="Shop chat",
        settings={"allowed_origins": [SHOP_ORIGIN], "color": "#0055ff", "greeting": "Hi! How can we help?"},
        secrets={"identity_secret": IDENTITY_SECRET},
    )


class Widget:
    """The widget's calls, from ``origin``, with the visitor token it got from its session (if any)."""

    def __init__(self, channel: Channel, *, origin: str | None = SHOP_ORIGIN, token: str = ""):
        self.channel = channel
        self.origin = origin
        self.token = token
        self.client = APIClient()

    def url(self, name: str) -> str:
        return f"/chat/api/{self.channel.public_key}/{name}"

    def headers(self) -> dict:
        headers = {}
        if self.origin is not None:
            headers["HTTP_ORIGIN"] = self.origin
        if self.token:
            headers["HTTP_X_VISITOR_TOKEN"] = self.token
        return headers

    def get(self, name: str, **params):
        return self.client.get(self.url(name), params, **self.headers())

    def post(self, name: str, data: dict | None = None, **kwargs):
        kwargs.setdefault("format", "json")
        return self.client.post(self.url(name), data or {}, **self.headers(), **kwargs)

    def start(self, **data):
        response = self.post("session", data)
        assert response.status_code in (200, 201), response.content
        self.token = response.json()["visitor_token"]
        return response

    def say(self, text: str, *, client_id: str | None = None):
        return self.post("messages", {"client_id": client_id or f"c-{next(_client_ids)}", "text": text})


@pytest.fixture
def widget(chat_channel) -> Widget:
    return Widget(chat_channel)


@pytest.fixture
def visitor_widget(chat_channel) -> Widget:
    """A widget whose anonymous visitor session has started."""
    widget = Widget(chat_channel)
    widget.start()
    return widget


@pytest.fixture
def make_widget(chat_channel):
    def make(**kwargs) -> Widget:
        return Widget(chat_channel, **kwargs)

    return make
