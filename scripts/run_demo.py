"""Run the demo on this machine: migrate, load the demo data, then the web server, a Celery worker and Celery
beat, until Ctrl-C.

Run with the project's virtualenv Python (``make demo`` does). Nothing else is needed: the database is the
SQLite file under var/ and the broker is kombu's file-system transport, unless DATABASE_URL / REDIS_URL say
otherwise. Each child runs in its own process group, so the terminal's Ctrl-C reaches only this supervisor,
which then stops the three and waits for them; a second Ctrl-C kills whatever is left.

Once the three are up, one that exits (a worker stopped by a broker outage, an out-of-memory kill) is started
again, after a pause that doubles with each exit in quick succession (up to RESTART_DELAY_MAX_SECONDS) and
starts over once it has run RESTART_RESET_AFTER_SECONDS; what it missed is found again by beat's sweeps. One
that exits while starting stops the demo instead: that is a configuration to fix, not an outage to wait out.
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 20
POLL_SECONDS = 0.5
RESTART_DELAY_SECONDS = 1.0
RESTART_DELAY_MAX_SECONDS = 30.0
RESTART_RESET_AFTER_SECONDS = 60.0
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class Supervisor:
    """Starts the children, relays their output line by line with a name prefix, and stops them."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self.launches: dict[str, tuple[list[str], dict]] = {}  # name -> (command, env), to start it again
        self.started_at: dict[str, float] = {}
        self.restart_delays: dict[str, float] = {}  # name -> the pause before its next start
        self.restart_at: dict[str, float] = {}  # name -> when an exited child is started again
        self.relays: list[threading.Thread] = []
        self.output_lock = threading.Lock()
        self.worker_ready = threading.Event()
        self.stop_requested = False
        self.stop_signals = 0

    def on_signal(self, signum, frame) -> None:
        self.stop_requested = True
        self.stop_signals += 1

    def say(self, text: str, *, stream=None) -> None:
        with self.output_lock:
            print(text, file=stream or sys.stdout, flush=True)

    def start(self, name: str, command: list[str], env: dict) -> None:
        self.launches[name] = (command, env)
        self.started_at[name] = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.processes[name] = process
        relay = threading.Thread(target=self._relay, args=(name, process), daemon=True)
        relay.start()
        self.relays.append(relay)

    def _relay(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            with self.output_lock:
                sys.stdout.write(f"{name:<6}| {line}")
                sys.stdout.flush()
            if name == "worker" and " ready." in line:
                self.worker_ready.set()

    def exited(self) -> tuple[str, int] | None:
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def restart_exited(self) -> None:
        """Start again each child that has exited, once its pause is over (announced when it exits). The pause
        doubles when the child exits again soon after its start, so a child that cannot run costs a start every
        RESTART_DELAY_MAX_SECONDS, not a busy loop."""
        now = time.monotonic()
        for name, process in list(self.processes.items()):
            code = process.poll()
            if code is None:
                continue
            if name not in self.restart_at:
                delay = self._next_delay(name, ran_for=now - self.started_at[name])
                self.restart_at[name] = now + delay
                self.say(f"[demo] {name} exited with code {code}; starting it again in {delay:g} s.", stream=sys.stderr)
            elif now >= self.restart_at[name]:
                del self.restart_at[name]
                self.say(f"[demo] Starting {name} again.")
                self.start(name, *self.launches[name])

    def _next_delay(self, name: str, *, ran_for: float) -> float:
        if ran_for >= RESTART_RESET_AFTER_SECONDS:
            delay = RESTART_DELAY_SECONDS
        else:
            delay = min(self.restart_delays.get(name, RESTART_DELAY_SECONDS / 2) * 2, RESTART_DELAY_MAX_SECONDS)
        self.restart_delays[name] = delay
        return delay

    def stop(self) -> None:
        """SIGTERM to each main process (the web server first, the worker last so that it finishes the task it
        is running; it stops its own pool), then wait for every process of their groups to be gone. SIGKILL
        to the groups after STOP_TIMEOUT_SECONDS or on a second Ctrl-C."""
        for name in ("web", "beat", "worker"):
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        signals_at_start = self.stop_signals
        while time.monotonic() < deadline and self.stop_signals == signals_at_start:
            for process in self.processes.values():
                process.poll()  # reap, so that an exited leader no longer counts as alive
            if not any(_group_alive(process.pid) for process in self.processes.values()):
                break
            time.sleep(0.2)
        for name, process in self.processes.items():
            if _group_alive(process.pid):
                self.say(f"[demo] {name} did not stop in time; killing it.")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        for relay in self.relays:
            relay.join(timeout=2)


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    base_url = f"http://{HOST}:{port}"
    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    env.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
    env.setdefault("PUBLIC_BASE_URL", base_url)
    env["PYTHONUNBUFFERED"] = "1"
    python = sys.executable
    manage = [python, str(BASE_DIR / "manage.py")]

    if not _port_is_free(port):
        print(f"[demo] Port {port} on {HOST} is in use; stop what uses it or run with PORT=8001.", file=sys.stderr)
        return 1
    print("[demo] Migrating the database...", flush=True)
    migrate = subprocess.run([*manage, "migrate", "--noinput", "--verbosity", "0"], cwd=BASE_DIR, env=env)  # noqa: S603
    if migrate.returncode != 0:
        return migrate.returncode
    print("[demo] Loading the demo data...", flush=True)
    seed = subprocess.run(  # noqa: S603
        [*manage, "seed_demo", "--base-url", base_url],
        cwd=BASE_DIR,
        env={**env, "LOG_LEVEL": "ERROR"},
        stdout=subprocess.PIPE,
        text=True,
    )
    if seed.returncode != 0:
        print(seed.stdout, end="")
        return seed.returncode

    supervisor = Supervisor()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, supervisor.on_signal)
    for name, command in child_commands(python=python, port=port).items():
        supervisor.start(name, command, env)

    exit_code = 0
    if _wait_until_ready(supervisor, f"{base_url}/healthz"):
        supervisor.say(_banner(base_url, seed.stdout))
    elif not supervisor.stop_requested:
        exit_code = 1
    while not supervisor.stop_requested and exit_code == 0:
        supervisor.restart_exited()
        time.sleep(POLL_SECONDS)
    supervisor.say("[demo] Stopping the web server, beat and the worker (a few seconds; Ctrl-C again to kill them)...")
    supervisor.stop()
    supervisor.say("[demo] Stopped.")
    return exit_code


def child_commands(*, python: str, port: int) -> dict[str, list[str]]:
    """The web server, the worker and beat, in the order they start."""
    celery = [python, "-m", "celery", "-A", "helpdesk"]
    return {
        "web": [
            python,
            "-m",
            "uvicorn",
            "helpdesk.asgi:application",
            "--host",
            HOST,
            "--port",
            str(port),
            "--lifespan",
            "off",
            # Chat events are small JSON frames: compressing each cost more CPU than it saved (see the README).
            "--ws-per-message-deflate",
            "false",
            # Client frames are small requests; a bigger one is refused (1009) before it is buffered whole.
            "--ws-max-size",
            "65536",
        ],
        # Gossip and mingle talk between workers over broadcast, which one local worker does not need.
        "worker": [
            *celery,
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--without-gossip",
            "--without-mingle",
        ],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
    }


def _wait_until_ready(supervisor: Supervisor, health_url: str) -> bool:
    """Until the web server answers its health check and the worker says it is ready (the banner then comes
    after their start-up output, not lost in it)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    is_healthy = False
    while time.monotonic() < deadline and not supervisor.stop_requested:
        exited = supervisor.exited()
        if exited is not None:
            supervisor.say(f"[demo] {exited[0]} exited with code {exited[1]} while starting.", stream=sys.stderr)
            return False
        if not is_healthy:
            try:
                with urllib.request.urlopen(health_url, timeout=2) as response:  # noqa: S310 (our own http URL)
                    is_healthy = response.status == 200
            except (urllib.error.URLError, OSError):
                pass
        if is_healthy and supervisor.worker_ready.is_set():
            return True
        time.sleep(POLL_SECONDS)
    if not supervisor.stop_requested:
        waiting_for = "the worker" if is_healthy else health_url
        supervisor.say(f"[demo] {waiting_for} was not ready within {STARTUP_TIMEOUT_SECONDS} s.", stream=sys.stderr)
    return False


def _banner(base_url: str, seed_output: str) -> str:
    rule = "=" * 100
    return "\n".join(
        [
            "",
            rule,
            "The help desk demo is running (web server, Celery worker, Celery beat). Ctrl-C stops all three.",
            "",
            f"  Agent console          {base_url}/console/  (sign in as alice, bob or admin: logins below)",
            f"  API docs (Swagger UI)  {base_url}/api/v1/docs",
            f"  API (base URL)         {base_url}/api/v1/  (tickets, customers, channels...: see the docs)",
            f"  OpenAPI schema         {base_url}/api/v1/schema",
            f"  Django admin           {base_url}/admin/",
            f"  Health check           {base_url}/healthz",
            "",
            seed_output.rstrip(),
            rule,
            "",
        ]
    )


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM if the supervisor dies without cleaning up."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while migrating or loading, before the servers started
        sys.exit(130)
