"""End-to-end fixtures: the real ASGI application under uvicorn on a loopback port, a host site on another port
(another origin, as a shop's website is), and Debian's Chromium driven by Playwright.

Playwright's sync API keeps an asyncio loop running in the test's thread, and Django refuses synchronous ORM
calls in a thread with a running loop. So the browser is started last (after the database and data fixtures) and
stopped first, and test bodies reach the ORM through ``orm(...)``, which runs it in a thread of its own.
"""

import http.server
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections

from tests.channels_app.smtp_peer import free_port, smtp  # noqa: F401  (the real SMTP peer fixture)

CHROMIUM = Path("/usr/bin/chromium")


def orm(function: Callable, *args, **kwargs):
    """Run ``function`` (ORM code) in a fresh thread, outside Playwright's running event loop; close its database
    connection there, so none is left open when the test database is flushed."""

    def call():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


@dataclass
class LiveDesk:
    url: str  # http://127.0.0.1:<port>, no trailing slash

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


@pytest.fixture
def live_desk(transactional_db):
    """helpdesk.asgi.application (HTTP and websockets) served by uvicorn in a background thread. Static files are
    served at their real /static/ URLs by Django's staticfiles handler (what runserver does; whitenoise serves
    the collected files in production)."""
    from helpdesk.asgi import application

    port = free_port()
    config = uvicorn.Config(
        ASGIStaticFilesHandler(application),
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        pytest.fail("uvicorn did not start")
    yield LiveDesk(url=f"http://127.0.0.1:{port}")
    server.should_exit = True  # graceful: open websockets are closed, their consumers disconnect
    thread.join(timeout=15)
    # Connections the server's threads left open would keep the test database busy for its flush and drop.
    connections.close_all()


class HostSite:
    """A tiny website on its own port, serving one page: a different origin from the desk, as a shop's site is."""

    def __init__(self) -> None:
        self.page = b""
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(site.page)))
                self.end_headers()
                self.wfile.write(site.page)

            def log_message(self, format, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="host-site", daemon=True)

    def start(self) -> "HostSite":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host_site():
    site = HostSite().start()
    yield site
    site.stop()


@pytest.fixture
def playwright_browser():
    """Debian's Chromium (never a downloaded one). Missing, it fails the test: a browser test that cannot run is a
    broken run, not a pass. Request this fixture last, so it starts after the data fixtures and stops first."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"needs Chromium at {CHROMIUM} (Debian package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()
