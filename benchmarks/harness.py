"""What the benchmarks share: the environment and databases they create, the processes they start and stop, the
clock and processor readings, percentiles, the versions they report, and the life of one run.

Each benchmark runs as a script (``.venv/bin/python benchmarks/<name>.py``), so this directory is on ``sys.path``
and they import this module as ``harness``. The benchmark process itself does not set Django up unless it renders
or imports in-process (``django_setup``); the server benchmarks drive ``manage.py``, uvicorn and Celery in
subprocesses and read the database with psycopg (or sqlite3). How to run each benchmark: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

REPO_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_DIR / "benchmarks" / "results"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
STARTUP_SECONDS = 90
# Environment the help desk reads; the benchmark sets each of these itself, so nothing leaks in from the shell.
APP_ENV_KEYS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "ALLOWED_HOSTS",
    "HELPDESK_VAR_DIR",
    "MEDIA_ROOT",
    "SECRET_KEY",
    "LOG_LEVEL",
    "PUBLIC_BASE_URL",
    "INBOUND_MAX_ATTEMPTS",
    "REQUIRE_SECRET_KEY",
    "DATABASE_CONN_MAX_AGE",
)


class BenchmarkError(Exception):
    """The benchmark could not run (a process failed to start, the global timeout passed...)."""


# --- Environment and databases ---------------------------------------------------------------------------------


def server_environment(*, settings: str, base_url: str, work_dir: Path, log_level: str) -> dict[str, str]:
    """What a benchmark's server and worker processes run with: DEBUG off, files under ``work_dir/var``, real
    Celery (not eager), a benchmark-only secret key. The caller adds the database and Redis."""
    return {
        "DJANGO_SETTINGS_MODULE": settings,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PUBLIC_BASE_URL": base_url,
        "HELPDESK_VAR_DIR": str(work_dir / "var"),
        "MEDIA_ROOT": str(work_dir / "var" / "media"),
        "SECRET_KEY": "benchmark-only-" + "x" * 40,
        "LOG_LEVEL": log_level,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PYTHONUNBUFFERED": "1",
    }


def services_environment(*, database_url: str, redis_url: str) -> dict[str, str]:
    """PostgreSQL as the database, one Redis database number as cache, channel layer and Celery broker."""
    return {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url}


def service_urls_check(parser: argparse.ArgumentParser, *, postgres_url: str, redis_url: str) -> None:
    """Refuse (``parser.error``) a PostgreSQL or Redis URL off this machine, and Redis database 0, which the tests
    use: the benchmark drops its database and flushes its Redis database."""
    for option, url in (("--postgres-url", postgres_url), ("--redis-url", redis_url)):
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            parser.error(f"{option} must point to this machine (127.0.0.1)")
    if urlsplit(redis_url).path.strip("/") in ("", "0"):
        parser.error("--redis-url must name a dedicated Redis database number, not 0 (the tests use it)")


def recreate_postgres_database(*, admin_url: str, name: str, encoding: str | None = None) -> str:
    """Drop and create ``name``; returns its URL for DATABASE_URL."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if encoding is not None:
            create = sql.SQL("{} ENCODING {}").format(create, sql.Literal(encoding))
        connection.execute(create)
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def recreate_postgres_database_at(url: str, *, encoding: str | None = None) -> str:
    """Drop and create the database ``url`` names, connecting to the server's ``postgres`` database to do it."""
    parts = urlsplit(url)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    return recreate_postgres_database(admin_url=admin_url, name=parts.path.strip("/"), encoding=encoding)


def django_setup(*, database_url: str, var_dir: Path, log_level: str, settings: str = "helpdesk.settings") -> None:
    """Set the desk up in this process against ``database_url``, with files under ``var_dir``, Celery eager (what
    a page or an import enqueues runs here, and is timed here) and no Redis."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": settings,
            "DATABASE_URL": database_url,
            "HELPDESK_VAR_DIR": str(var_dir),
            "MEDIA_ROOT": str(var_dir / "media"),
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "DEBUG": "false",
            "LOG_LEVEL": log_level,
            "REDIS_URL": "",
        }
    )
    repository_on_path()
    import django

    django.setup()


def repository_on_path() -> None:
    """Make the desk's packages importable from a benchmark script (its own directory is what Python put first)."""
    if sys.path[:1] != [str(REPO_DIR)]:
        sys.path.insert(0, str(REPO_DIR))


class Database:
    """Read-only access to the benchmark database from this process (no Django)."""

    def __init__(self, *, postgres_url: str | None = None, sqlite_path: Path | None = None) -> None:
        self.postgres_url = postgres_url
        self.sqlite_path = sqlite_path
        self._connection = None

    def connect(self):
        if self._connection is None:
            if self.postgres_url:
                self._connection = psycopg.connect(self.postgres_url, autocommit=True)
            else:
                self._connection = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=20)
        return self._connection

    def rows(self, query: str, params: tuple = ()) -> list[tuple]:
        if not self.postgres_url:
            query = query.replace("%s", "?")
        cursor = self.connect().cursor()
        try:
            cursor.execute(query, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def value(self, query: str, params: tuple = ()):
        return self.rows(query, params)[0][0]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def versions(database: Database, *, is_sqlite: bool) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("django", "djangorestframework", "celery", "uvicorn", "psycopg", "httpx"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    found["database"] = (
        f"SQLite {sqlite3.sqlite_version}" if is_sqlite else database.value("select version()").split(" on ")[0]
    )
    return found


def git_short_head() -> str:
    """The abbreviated commit of this tree (empty outside a git checkout)."""
    return subprocess.run(
        ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


# --- Processes -------------------------------------------------------------------------------------------------


class Processes:
    """Subprocesses in their own process groups, each stopped (group and all) by ``stop_all``."""

    def __init__(self, *, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.running: list[tuple[str, subprocess.Popen]] = []

    def run(self, name: str, command: list[str], *, deadline: float) -> str:
        """Run a command to completion (bounded by the deadline); its stdout, or BenchmarkError with its log."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, cwd=REPO_DIR, env=self.env, stdout=subprocess.PIPE, stderr=log, start_new_session=True
            )
            self.running.append((name, process))
            try:
                stdout, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as exc:
                raise BenchmarkError(f"{name} did not finish before the global timeout") from exc
            finally:
                self._stop(name, process)
        if process.returncode != 0:
            raise BenchmarkError(f"{name} failed with exit code {process.returncode}:\n{_tail(log_path)}")
        return stdout.decode()

    def start(self, name: str, command: list[str], *, extra_env: dict[str, str] | None = None) -> Path:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            command,
            cwd=REPO_DIR,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # the child holds its own descriptor
        self.running.append((name, process))
        return log_path

    def check_alive(self) -> None:
        for name, process in self.running:
            if process.poll() is not None:
                raise BenchmarkError(
                    f"{name} exited with code {process.returncode}:\n{_tail(self.log_dir / f'{name}.log')}"
                )

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each started process group (leader, children, and reaped children)."""
        groups = {process.pid: name for name, process in self.running}
        used = dict.fromkeys(groups.values(), 0.0)
        ticks = os.sysconf("SC_CLK_TCK")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # the process ended meanwhile
            # After the command name: state ppid pgrp ... utime(12) stime(13) cutime(14) cstime(15).
            name = groups.get(int(fields[2]))
            if name is not None:
                used[name] += sum(int(value) for value in fields[11:15]) / ticks
        return used

    def stop_all(self) -> None:
        for name, process in reversed(self.running):
            self._stop(name, process)
        self.running.clear()

    def _stop(self, name: str, process: subprocess.Popen) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        # The leader may be gone while a child of its group lingers (a prefork child, a uvicorn worker).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self.running = [(n, p) for n, p in self.running if p is not process]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, *, what: str, deadline: float, processes: Processes, interval: float = 0.2) -> None:
    limit = min(deadline, time.monotonic() + STARTUP_SECONDS)
    while not condition():
        processes.check_alive()
        if time.monotonic() > limit:
            raise BenchmarkError(f"timed out waiting for {what}")
        time.sleep(interval)


def server_healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def log_says(path: Path, text: str) -> bool:
    try:
        return text in path.read_text(errors="replace")
    except OSError:
        return False


def migrate_and_set_up(processes: Processes, *, setup_code: str, deadline: float) -> dict:
    """Migrate the fresh database, then run ``setup_code`` in ``manage.py shell``: it creates what the benchmark
    needs through the services and prints one line ``BENCH_SETUP <json>``, returned here."""
    processes.run("migrate", [sys.executable, "manage.py", "migrate", "--noinput"], deadline=deadline)
    output = processes.run("setup", [sys.executable, "manage.py", "shell", "-c", setup_code], deadline=deadline)
    line = next((line for line in output.splitlines() if line.startswith("BENCH_SETUP ")), None)
    if line is None:
        raise BenchmarkError(f"the setup printed no result:\n{output[-2000:]}")
    return json.loads(line.removeprefix("BENCH_SETUP "))


def uvicorn_start(processes: Processes, *, port: int, workers: int) -> None:
    """The desk's ASGI application under uvicorn on 127.0.0.1:``port``, as the benchmarks run it."""
    processes.start(
        "uvicorn",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "helpdesk.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
            # As docker-compose.yml runs it: no per-message compression of websocket frames (see docs/chat.md).
            "--ws-per-message-deflate",
            "false",
            "--ws-max-size",
            "65536",
        ],
    )


def celery_start(
    processes: Processes, *, concurrency: int, hostname: str, extra_env: dict[str, str] | None = None
) -> Path:
    """A Celery worker (``--concurrency`` prefork processes, log level INFO); returns its log, which says
    `` ready.`` once it takes tasks."""
    return processes.start(
        "celery",
        [
            *(sys.executable, "-m", "celery", "-A", "helpdesk", "worker"),
            *("--concurrency", str(concurrency), "--loglevel", "INFO", "--hostname", hostname),
        ],
        extra_env=extra_env,
    )


# --- Clients ---------------------------------------------------------------------------------------------------


def fan_out(
    *,
    count: int,
    concurrency: int,
    deadline: float,
    open_client: Callable[[], contextlib.AbstractContextManager],
    send: Callable[[object, int], object],
) -> list:
    """``send(client, index)`` for every index below ``count``, from ``concurrency`` threads, each with its own
    client (its own keep-alive connection) and taking the next index when done. Returns the answers of the sends
    made (in index order); raises BenchmarkError when the deadline passed first."""
    answers: list = [None] * count
    lock = threading.Lock()
    cursor = iter(range(count))
    stop = threading.Event()

    def next_slot() -> int | None:
        with lock:
            return next(cursor, None)

    def client_loop() -> None:
        with open_client() as client:
            while not stop.is_set() and time.monotonic() < deadline:
                slot = next_slot()
                if slot is None:
                    return
                answers[slot] = send(client, slot)

    threads = [threading.Thread(target=client_loop, name=f"poster-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    finally:
        stop.set()
    if time.monotonic() >= deadline:
        raise BenchmarkError("the global timeout passed while posting")
    return [answer for answer in answers if answer is not None]


# --- Figures ---------------------------------------------------------------------------------------------------


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_percent(start: tuple[int, int], end: tuple[int, int]) -> float:
    busy, total = end[0] - start[0], end[1] - start[1]
    return round(100 * busy / total, 1) if total else math.nan


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages: other work on it skews the figures."""
    return [round(value, 2) for value in os.getloadavg()]


def percentile(sorted_values: list[float], rank: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    position = max(0, math.ceil(rank / 100 * len(sorted_values)) - 1)
    return sorted_values[position]


def percentiles_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50, p95, p99 (nearest rank) and max of durations in seconds, as milliseconds rounded to 0.01."""
    milliseconds = sorted(value * 1000 for value in seconds)
    return {
        "p50": round(percentile(milliseconds, 50), 2),
        "p95": round(percentile(milliseconds, 95), 2),
        "p99": round(percentile(milliseconds, 99), 2),
        "max": round(milliseconds[-1], 2) if milliseconds else math.nan,
    }


def latency_figures(answers: list) -> dict[str, float]:
    """``percentiles_ms`` and the mean of the answers' ``seconds``."""
    seconds = [answer.seconds for answer in answers]
    milliseconds = [value * 1000 for value in seconds]
    return {
        **percentiles_ms(seconds),
        "mean": round(sum(milliseconds) / len(milliseconds), 2) if milliseconds else math.nan,
    }


def check(actual, expected) -> dict:
    return {"actual": actual, "expected": expected, "ok": actual == expected}


# --- Printing --------------------------------------------------------------------------------------------------


def checks_lines(checks: dict[str, dict], *, counted: bool = True) -> list[str]:
    """The summary's ``checks`` line (with passed/total when ``counted``), then one line per failed check."""
    failed = [name for name, item in checks.items() if not item["ok"]]
    line = f"  checks               {'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}"
    if counted:
        line += f" ({len(checks) - len(failed)}/{len(checks)})"
    return [line, *(f"    {name}: {checks[name]['actual']} (expected {checks[name]['expected']})" for name in failed)]


def closing_lines(*, error_samples: list[str], results: object) -> list[str]:
    """The summary's last lines: up to five error samples when there were errors, and where the results went."""
    lines = ["  error samples        " + " | ".join(error_samples)] if error_samples else []
    return [*lines, f"  results              {results}"]


# --- A run -----------------------------------------------------------------------------------------------------


def _raise_on_sigterm(signum, frame) -> None:
    print("[bench] terminated", file=sys.stderr)
    raise SystemExit(128 + signum)


def benchmark_main(*, args, result_prefix: str, run, summary, work_prefix: str = "helpdesk-bench-") -> int:
    """The life of one benchmark run: signals, a work directory, ``run(args, work_dir=, processes=)``, the result
    JSON under ``results/<result_prefix><time>.json``, the printed ``summary(result, results_path=)``, and every
    started process stopped whatever happens. Exit code 0 when every check passed, 1 when one failed, 2 when the
    run was aborted, 130 on Ctrl-C."""
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    # Ctrl-C must stop the run even when started from a shell that made the process ignore SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work_dir = Path(tempfile.mkdtemp(prefix=work_prefix))
    (work_dir / "var").mkdir()
    env = {key: value for key, value in os.environ.items() if key not in APP_ENV_KEYS}
    processes = Processes(log_dir=work_dir, env=env)
    succeeded = False
    try:
        result = run(args, work_dir=work_dir, processes=processes)
        results_path = results_write(result, prefix=result_prefix)
        print(summary(result, results_path=results_path))
        succeeded = result["ok"]
        return 0 if succeeded else 1
    except BenchmarkError as exc:
        print(f"[bench] aborted: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[bench] interrupted", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        if succeeded and not args.keep_logs:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            print(f"[bench] server and worker logs: {work_dir}", file=sys.stderr)


def results_write(result: dict, *, prefix: str, indent: int = 2, **dumps) -> Path:
    """``result`` as JSON in ``benchmarks/results/<prefix><UTC time>.json`` (git-ignored); returns the path.
    ``dumps`` goes to ``json.dumps`` (``ensure_ascii``, ``default``)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{prefix}{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=indent, **dumps) + "\n")
    return path
