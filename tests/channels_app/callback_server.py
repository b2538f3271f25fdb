"""A real HTTP server on 127.0.0.1 standing in for a company's callback endpoint: it records every request and
answers with the statuses it is told to."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackServer:
    """``statuses`` are answered in turn (the last one repeats); ``delay_seconds`` holds each answer back."""

    statuses: list[int] = field(default_factory=lambda: [200])
    message_id: str = ""
    delay_seconds: float = 0.0
    requests: list[ReceivedRequest] = field(default_factory=list)

    def __post_init__(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests.append(
                    ReceivedRequest(method="POST", path=self.path, headers=dict(self.headers.items()), body=body)
                )
                if owner.delay_seconds:
                    time.sleep(owner.delay_seconds)
                status = owner.statuses.pop(0) if len(owner.statuses) > 1 else owner.statuses[0]
                self.send_response(status)
                if owner.message_id:
                    self.send_header("X-Message-Id", owner.message_id)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/helpdesk/callback"

    def start(self) -> "CallbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
