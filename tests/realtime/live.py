"""Real websockets for the isolation and frame tests (the desk itself is the ``desk`` fixture of
tests/realtime/conftest.py): sockets opened by the ``websockets`` client as a browser opens them (the agent's
session cookie and the desk's Origin; the visitor's token in the URL and the shop's Origin).

Test bodies run in the test's thread and reach the ORM directly: the sync client needs no event loop there.
"""

import contextlib
import json
import time
from urllib.parse import quote

import httpx
from django.conf import settings as django_settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as websocket_connect

from tests.realtime.fixtures import QUIET, SHOP_ORIGIN, TIMEOUT, session_cookie


class LiveSocket:
    """One websocket client connection; events are read in order, each once."""

    def __init__(self, connection) -> None:
        self.connection = connection

    def send(self, request: dict) -> None:
        self.connection.send(json.dumps(request))

    def send_raw(self, frame: str | bytes) -> None:
        """Send ``frame`` as it is; a server that closes the socket while it is on its way is no error here (the
        close code is what the test reads next)."""
        with contextlib.suppress(ConnectionClosed):
            self.connection.send(frame)

    def receive(self, *, timeout: float = TIMEOUT) -> dict:
        return json.loads(self.connection.recv(timeout=timeout))

    def receive_until(self, matches, *, timeout: float = TIMEOUT) -> dict:
        """The first event for which ``matches`` is true; the events before it are skipped."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                event = self.receive(timeout=max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            if matches(event):
                return event
            seen.append(event)
        raise AssertionError(f"no matching event; the socket saw {seen!r}")

    def assert_nothing(self, *, timeout: float = QUIET) -> None:
        try:
            event = self.connection.recv(timeout=timeout)
        except TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {event!r}")

    def closed_code(self, *, timeout: float = TIMEOUT) -> int:
        """Waits for the server to close the socket (skipping what it sent before) and returns the close code."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.connection.recv(timeout=max(0.05, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else 1006
        except TimeoutError:
            pass
        raise AssertionError("the server did not close the socket")

    def close(self) -> None:
        self.connection.close()


def eventually(condition, *, timeout: float = TIMEOUT) -> None:
    """Wait until ``condition()`` is true: what a consumer does after the socket closed (its presence leaves) runs
    a moment after the client has seen the close."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s")
        time.sleep(0.05)


def agent_connect(desk, user) -> LiveSocket:
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={session_cookie(user)}"
    connection = websocket_connect(
        desk.ws_url + "/ws/agent/",
        additional_headers={"Cookie": cookie, "Origin": desk.url},
        open_timeout=TIMEOUT,
        legacy=True,  # a connection the test closes itself
    )
    return LiveSocket(connection)


def visitor_start(desk, channel) -> str:
    """A widget session on ``channel`` started over HTTP, as the widget's script does; the visitor token."""
    response = httpx.post(
        f"{desk.url}/chat/api/{channel.public_key}/session", json={}, headers={"Origin": SHOP_ORIGIN}, timeout=20
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["visitor_token"]


def visitor_say(desk, channel, token: str, text: str, client_id: str) -> dict:
    response = httpx.post(
        f"{desk.url}/chat/api/{channel.public_key}/messages",
        json={"client_id": client_id, "text": text},
        headers={"Origin": SHOP_ORIGIN, "X-Visitor-Token": token},
        timeout=20,
    )
    assert response.status_code == 201, response.text
    return response.json()


def visitor_connect(desk, channel, token: str) -> LiveSocket:
    connection = websocket_connect(
        f"{desk.ws_url}/chat/ws/{channel.public_key}/?token={quote(token)}",
        additional_headers={"Origin": SHOP_ORIGIN},
        open_timeout=TIMEOUT,
        legacy=True,  # a connection the test closes itself
    )
    return LiveSocket(connection)
