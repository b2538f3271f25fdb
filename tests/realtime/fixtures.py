"""Shared by the consumer tests (tests/realtime, tests/chat/test_consumers.py): the Redis channel layer, sockets
as a browser opens them, and running an async scenario from a sync test (pytest-asyncio is not installed).

The tests are transactional (``django_db(transaction=True)``): events go out on commit, and the consumers read
the database from their own threads, which must see the committed rows.
"""

import os
import sys
import types
import uuid
from pathlib import Path
from urllib.parse import quote

import channels
import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.test import Client

from helpdesk.asgi import application
from realtime.presence import KEY_PREFIX
from tests.conftest import services_or_skip

try:
    from channels.testing import WebsocketCommunicator
except ModuleNotFoundError as exc:
    # channels.testing's package imports its live-server test case, which needs daphne (not installed: we serve
    # with uvicorn). The communicator itself does not: load the package without that import.
    if exc.name != "daphne":
        raise
    _package = types.ModuleType("channels.testing")
    _package.__path__ = [str(Path(channels.__file__).parent / "testing")]
    sys.modules["channels.testing"] = _package
    from channels.testing.websocket import WebsocketCommunicator

SHOP_ORIGIN = "https://shop.example"
TIMEOUT = 5  # seconds to wait for an expected event (a loaded shared machine)
QUIET = 0.3  # how long "nothing arrives" is watched


def _clear_presence() -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(f"{KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_layer(settings):
    """The Redis channel layer (as in production with REDIS_URL), on a prefix of this test's own."""
    services_or_skip(need_redis=True)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.layers.RedisPubSubLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
        }
    }
    _clear_presence()
    yield
    _clear_presence()


def run(scenario):
    """Run ``scenario`` (an async function of no arguments) in an event loop, from a sync test; its result."""
    return async_to_sync(scenario)()


def visitor_socket(*, public_key: str, token: str, origin: str | None = SHOP_ORIGIN) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())] if origin is not None else []
    return WebsocketCommunicator(application, f"/chat/ws/{public_key}/?token={quote(token)}", headers=headers)


def session_cookie(user) -> str:
    """A real session of ``user``, as the login form would leave in the browser."""
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def agent_socket(*, cookie: str | None, origin: str | None = None) -> WebsocketCommunicator:
    headers = []
    origin = django_settings.PUBLIC_BASE_URL if origin is None else origin
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/agent/", headers=headers)


async def assert_refused(communicator: WebsocketCommunicator) -> None:
    """Accepted only to be closed with 4403 (a browser sees the code), and nothing sent before."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert await communicator.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()


async def receive(communicator: WebsocketCommunicator) -> dict:
    return await communicator.receive_json_from(timeout=TIMEOUT)


async def connect(communicator: WebsocketCommunicator) -> None:
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
