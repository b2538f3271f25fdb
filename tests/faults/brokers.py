"""Brokers of the fault tests' own: a redis-server and a RabbitMQ node on free loopback ports, in temporary
directories, that a test stops and starts again. Never the machine's shared ones.

Both keep what they hold across a stop, as deployed: Redis with its append-only file (docker-compose.yml runs it
so), RabbitMQ with its durable queues and persistent messages in its own Mnesia directory.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from kombu import Connection

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def rabbitmq_server_binary() -> str | None:
    # Debian's /usr/sbin/rabbitmq-server re-runs itself as the rabbitmq user, who cannot write to this test's
    # directories; the script it wraps runs the node as whoever calls it.
    debian = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    if debian.exists():
        return str(debian)
    return shutil.which("rabbitmq-server")


class BrokerProcess:
    """One broker process: ``start()`` waits until it takes connections, ``stop()`` until it is gone."""

    name = "broker"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"helpdesk-faults-{self.name}-"))
        self.process: subprocess.Popen | None = None
        self.log_path = self.root / "process.log"

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict:
        return dict(os.environ)

    def start(self):
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=self.root, env=self.environment(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting:\n{self.log()}")
            if self.is_answering():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {START_TIMEOUT_SECONDS} s:\n{self.log()}")

    def is_answering(self) -> bool:
        try:
            with Connection(self.url, connect_timeout=1) as connection:
                connection.ensure_connection(max_retries=0)
        except Exception:
            return False
        return True

    def stop(self) -> None:
        """A clean stop (SIGTERM), as an operator's restart or an orchestrator's does."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer(BrokerProcess):
    name = "redis"

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.root),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
        ]  # fmt: skip


class RabbitMQNode(BrokerProcess):
    """A node of its own: its name, AMQP and distribution ports, Mnesia and log directories, configuration (the
    machine's /etc/rabbitmq names the shared node's port), plugins file (no management listener) and Erlang cookie
    (a HOME of its own)."""

    name = "rabbitmq"

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.dist_port = free_port()
        self.node_name = f"helpdesk-faults-{secrets.token_hex(4)}@localhost"
        home = self.root / "home"
        home.mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (self.root / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def command(self) -> list[str]:
        return [rabbitmq_server_binary()]

    def environment(self) -> dict:
        return {
            **os.environ,
            "HOME": str(self.root / "home"),
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.root / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def log(self) -> str:
        logs = [super().log()]
        for path in sorted((self.root / "log").glob("*.log")):
            logs.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(logs)
