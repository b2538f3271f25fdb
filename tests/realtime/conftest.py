"""The live desk for the tests on real websockets (tests/realtime/live.py): uvicorn serving the ASGI application
(tests/e2e/conftest.py's ``live_desk``, with production's ``--ws-max-size``) on the Redis channel layer."""

import pytest

from tests.e2e.conftest import live_desk  # noqa: F401  (the fixture, by name)
from tests.realtime.fixtures import redis_layer  # noqa: F401


@pytest.fixture
def desk(redis_layer, live_desk, settings):  # noqa: F811
    """The live desk as the console's own origin (the agent socket's Origin check)."""
    settings.PUBLIC_BASE_URL = live_desk.url
    settings.CSRF_TRUSTED_ORIGINS = [live_desk.url]
    return live_desk
