"""End-to-end benchmark of the API channel: real server, real workers, real database.

Posts N distinct messages to ``POST /api/v1/channels/<id>/messages`` of a uvicorn server, lets Celery workers
process them onto the customers' tickets and timelines, and prints:

- accepted messages/s (202 answers divided by the wall time of the posting phase);
- request latency p50/p95/p99/max and the count of non-2xx answers (which must be 0);
- the time from the first post until all N inbound events are ``processed``, and that processing throughput;
- correctness checks: N inbound messages, one customer and one ticket per sender, re-posted ids answered
  ``200 duplicate`` and not counted twice, no failed or quarantined events.

Everything runs on 127.0.0.1 and is created by the script: a PostgreSQL database (dropped first), a Redis
database number for the broker and cache (flushed first), an API channel and its integration token, the server
and the workers. With ``--sqlite`` the same runs on the embedded defaults (a SQLite file and Celery's
file-system transport in a temporary directory). Every process it starts is stopped on exit, error or Ctrl-C.

The benchmark process itself does not set Django up: it drives ``manage.py`` in subprocesses and reads the
database with psycopg (or sqlite3). Usage and how to read the figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import random
import re
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
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import redis
from psycopg import sql

REPO_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_DIR / "benchmarks" / "results"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
INBOUND_MAX_ATTEMPTS = 5
POLL_SECONDS = 0.1
STARTUP_SECONDS = 90
# After posting, this long without one more event finished means the rest will not be (a lost task waits for
# beat's requeue sweep, which the benchmark does not run): stop and say so rather than wait for --timeout.
STALL_SECONDS = 60
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
SETUP_CODE = """
import json
from agents.models import ApiToken
from agents.services import api_token_create
from channels_app.models import Channel
from channels_app.services.channels import channel_create

channel = channel_create(kind=Channel.Kind.API, name="Benchmark API")
issued = api_token_create(name="benchmark", scopes=[ApiToken.Scope.MESSAGES_WRITE], channel=channel)
print("BENCH_SETUP " + json.dumps({"channel_id": channel.pk, "token": issued.secret}))
"""
VOCABULARY = """order invoice delivery refund account password login payment card subscription plan upgrade cancel
    shipping address tracking package arrived damaged missing item replacement warranty support thanks please
    hello could you help me with my the a an and or but since yesterday today last week still not working
    error message screen app website checkout coupon discount price charged twice bank statement receipt"""
WORDS = tuple(VOCABULARY.split())


class BenchmarkError(Exception):
    """The benchmark could not run (a process failed to start, the global timeout passed...)."""


@dataclass(frozen=True)
class Sender:
    kind: str  # "email" or "phone"
    stored_value: str  # the normalised value the desk should store
    spellings: tuple[str, ...]  # how the posts write it; all must resolve to one customer


@dataclass(frozen=True)
class Post:
    index: int
    provider_id: str
    body: bytes


@dataclass
class Answer:
    index: int
    started: float  # perf_counter
    seconds: float
    status: int | None
    event_id: str | None = None
    is_duplicate: bool | None = None
    error: str = ""


@dataclass
class ProgressLog:
    """What the poller saw: (seconds since the first post, processed count) and the terminal state.

    ``expected`` starts at N and is lowered to the number of 202 answers once posting ends, so that a run with
    refused posts still finishes (and fails its checks) instead of waiting for events that never came."""

    expected: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    all_processed_at: float | None = None  # perf_counter
    terminal_counts: dict[str, int] = field(default_factory=dict)
    peak_connections: int = 0
    posting_done: bool = False
    stalled_counts: dict[str, int] = field(default_factory=dict)


# --- Arguments -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="distinct messages to post (N, default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads posting at once (default 16)")
    parser.add_argument("--customers", type=int, default=0, help="distinct senders (default N/10)")
    parser.add_argument(
        "--phone-share", type=float, default=0.25, help="share of senders identified by phone (default 0.25)"
    )
    parser.add_argument("--duplicates", type=int, default=0, help="messages re-posted with the same id (default N/100)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--celery-concurrency", type=int, default=2, help="Celery prefork processes (default 2)")
    parser.add_argument("--timeout", type=float, default=600, help="abort after this many seconds (default 600)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for senders and texts (default 1)")
    parser.add_argument("--sqlite", action="store_true", help="run on SQLite and the file-system broker instead")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a database to connect to for dropping and creating the benchmark's (default: postgres on 127.0.0.1)",
    )
    parser.add_argument("--database-name", default="helpdesk_bench", help="dropped first (default helpdesk_bench)")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/5", help="a dedicated DB number, flushed (default /5)"
    )
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the server and workers (default INFO)")
    parser.add_argument(
        "--conn-max-age", type=int, default=None, help="DATABASE_CONN_MAX_AGE of the server (default: the settings')"
    )
    parser.add_argument(
        "--settings",
        default="helpdesk.settings",
        help="DJANGO_SETTINGS_MODULE, to compare a variant (default helpdesk.settings)",
    )
    parser.add_argument(
        "--worker-conn-max-age",
        type=int,
        default=None,
        help="DATABASE_CONN_MAX_AGE of the Celery worker (default: the settings')",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the server and worker logs after success")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1 or args.workers < 1 or args.celery_concurrency < 1:
        parser.error("--messages, --concurrency, --workers and --celery-concurrency must be at least 1")
    args.customers = min(args.customers or max(1, args.messages // 10), args.messages)
    args.duplicates = min(args.duplicates or max(10, args.messages // 100), args.messages)
    if not 0 <= args.phone_share <= 1:
        parser.error("--phone-share must be between 0 and 1")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database_name):
        parser.error("--database-name must be a plain lower-case identifier")
    if not args.sqlite:
        for option, url in (("--postgres-url", args.postgres_url), ("--redis-url", args.redis_url)):
            if urlsplit(url).hostname not in LOOPBACK_HOSTS:
                parser.error(f"{option} must point to this machine (127.0.0.1)")
        if urlsplit(args.redis_url).path.strip("/") in ("", "0"):
            parser.error("--redis-url must name a dedicated Redis database number, not 0 (the tests use it)")
    return args


# --- Workload --------------------------------------------------------------------------------------------------


def make_senders(*, count: int, phone_share: float, rng: random.Random) -> list[Sender]:
    """Senders written in more than one way, as real systems do: the desk must recognise each as one person."""
    phone_senders = set(rng.sample(range(count), round(count * phone_share)))
    senders = []
    for number in range(count):
        if number in phone_senders:
            exchange, line = 200 + number // 10_000, number % 10_000
            e164 = f"+1415{exchange}{line:04d}"
            senders.append(
                Sender(
                    kind="phone",
                    stored_value=e164,
                    spellings=(e164, f"(415) {exchange}-{line:04d}", f"415.{exchange}.{line:04d}"),
                )
            )
        else:
            senders.append(
                Sender(
                    kind="email",
                    stored_value=f"customer{number}@bench.example",
                    spellings=(f"customer{number}@bench.example", f"Customer{number}@Bench.Example"),
                )
            )
    return senders


def _text(rng: random.Random) -> str:
    target = rng.randint(300, 1000)
    lines, line, length = [], [], 0
    while length < target:
        word = rng.choice(WORDS)
        line.append(word)
        length += len(word) + 1
        if len(line) >= rng.randint(8, 16):
            lines.append(" ".join(line).capitalize() + ".")
            line = []
    if line:
        lines.append(" ".join(line).capitalize() + ".")
    return "\n".join(lines)


def make_posts(*, count: int, senders: list[Sender], rng: random.Random) -> tuple[list[Post], Counter]:
    """``count`` distinct messages spread over all senders in a shuffled order (so some of one sender's messages
    arrive close together). Returns the posts and the expected number of messages per stored sender value."""
    owners = [number % len(senders) for number in range(count)]
    rng.shuffle(owners)
    seen: set[int] = set()
    expected: Counter = Counter()
    posts = []
    sent_at = datetime.now(UTC).isoformat()
    for index, owner in enumerate(owners):
        sender = senders[owner]
        is_first = owner not in seen
        seen.add(owner)
        provider_id = f"bench-{index:07d}"
        payload = {
            "id": provider_id,
            "sender": {sender.kind: rng.choice(sender.spellings)},
            "subject": f"Question about order {rng.randint(10_000, 99_999)}" if is_first and rng.random() < 0.5 else "",
            "text": _text(rng),
            "sent_at": sent_at,
            "metadata": {"source": "benchmark", "sequence": index},
        }
        if rng.random() < 0.5:
            payload["sender"]["name"] = f"Customer {owner}"
        posts.append(Post(index=index, provider_id=provider_id, body=json.dumps(payload).encode()))
        expected[sender.stored_value] += 1
    return posts, expected


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


def _server_healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _worker_ready(log_path: Path) -> bool:
    try:
        return " ready." in log_path.read_text(errors="replace")
    except OSError:
        return False


# --- Database --------------------------------------------------------------------------------------------------


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


EVENT_COUNTS = """
select count(*),
       count(*) filter (where status = 'processed'),
       count(*) filter (where status = 'quarantined'),
       count(*) filter (where status = 'failed'),
       count(*) filter (where status = 'failed' and attempts >= %s)
from channels_app_inboundevent
"""


def event_counts(database: Database) -> dict[str, int]:
    total, processed, quarantined, failed, failed_final = database.rows(EVENT_COUNTS, (INBOUND_MAX_ATTEMPTS,))[0]
    return {
        "total": total,
        "processed": processed,
        "quarantined": quarantined,
        "failed": failed,
        "failed_final": failed_final,
    }


def recreate_postgres_database(*, admin_url: str, name: str) -> str:
    """Drop and create ``name``; returns its URL for DATABASE_URL."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


# --- Posting ---------------------------------------------------------------------------------------------------


def post_all(
    *, base_url: str, token: str, channel_id: int, posts: list[Post], concurrency: int, deadline: float
) -> list[Answer]:
    """Post every message once from ``concurrency`` threads, each with its own keep-alive connection."""
    answers: list[Answer | None] = [None] * len(posts)
    lock = threading.Lock()
    cursor = iter(range(len(posts)))
    stop = threading.Event()
    url = f"/api/v1/channels/{channel_id}/messages"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def next_slot() -> int | None:
        with lock:
            return next(cursor, None)

    def client_loop() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                slot = next_slot()
                if slot is None:
                    return
                post = posts[slot]
                started = time.perf_counter()
                try:
                    response = client.post(url, content=post.body)
                except httpx.HTTPError as exc:
                    answers[slot] = Answer(post.index, started, time.perf_counter() - started, None, error=repr(exc))
                    continue
                seconds = time.perf_counter() - started
                answer = Answer(post.index, started, seconds, response.status_code)
                if response.is_success:
                    body = response.json()
                    answer.event_id, answer.is_duplicate = body.get("id"), body.get("duplicate")
                else:
                    answer.error = response.text[:300]
                answers[slot] = answer

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


def poll_processing(
    *, database: Database, first_post: float, deadline: float, stop: threading.Event, log: ProgressLog
) -> None:
    """Every 100 ms, count processed events until all ``log.expected`` are in a terminal state (or stop/deadline);
    on PostgreSQL also note the peak number of connections to the benchmark database."""
    try:
        _poll(database=database, first_post=first_post, deadline=deadline, stop=stop, log=log)
    finally:
        database.close()


def _poll(*, database: Database, first_post: float, deadline: float, stop: threading.Event, log: ProgressLog) -> None:
    last_report = 0.0
    last_terminal, last_change = -1, time.perf_counter()
    while not stop.is_set() and time.monotonic() < deadline:
        counts = event_counts(database)
        now = time.perf_counter()
        if database.postgres_url:
            connections = database.value(
                "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
            )
            log.peak_connections = max(log.peak_connections, connections)
        log.samples.append((now - first_post, counts["processed"]))
        if counts["processed"] >= log.expected and log.all_processed_at is None:
            log.all_processed_at = now
        terminal = counts["processed"] + counts["quarantined"] + counts["failed_final"]
        if now - last_report >= 2:
            print(
                f"  ... {now - first_post:6.1f} s: {counts['total']} received, {counts['processed']} processed, "
                f"{counts['failed']} failed, {counts['quarantined']} quarantined",
                file=sys.stderr,
                flush=True,
            )
            last_report = now
        if terminal >= log.expected:
            log.terminal_counts = counts
            return
        if terminal != last_terminal:
            last_terminal, last_change = terminal, now
        elif log.posting_done and now - last_change > STALL_SECONDS:
            log.stalled_counts = counts
            return
        stop.wait(POLL_SECONDS)


# --- Figures and checks ----------------------------------------------------------------------------------------


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


def percentile(sorted_values: list[float], rank: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    position = max(0, math.ceil(rank / 100 * len(sorted_values)) - 1)
    return sorted_values[position]


def latency_figures(answers: list[Answer]) -> dict[str, float]:
    milliseconds = sorted(answer.seconds * 1000 for answer in answers)
    return {
        "p50": round(percentile(milliseconds, 50), 2),
        "p95": round(percentile(milliseconds, 95), 2),
        "p99": round(percentile(milliseconds, 99), 2),
        "max": round(milliseconds[-1], 2) if milliseconds else math.nan,
        "mean": round(sum(milliseconds) / len(milliseconds), 2) if milliseconds else math.nan,
    }


def correctness_checks(
    *, database: Database, messages: int, customers: int, expected_per_sender: Counter, counts: dict[str, int]
) -> dict[str, dict]:
    """What the database must hold after N distinct messages from ``customers`` senders (duplicates included)."""
    per_sender = dict(
        database.rows(
            """
            select identity.value, count(*)
            from tickets_message message
            join customers_customeridentity identity on identity.customer_id = message.customer_id
            where message.direction = 'inbound'
            group by identity.value
            """
        )
    )
    found = {
        "inbound events stored": (counts["total"], messages),
        "events processed": (counts["processed"], messages),
        "events failed": (counts["failed"], 0),
        "events quarantined": (counts["quarantined"], 0),
        "inbound messages": (
            database.value("select count(*) from tickets_message where direction = 'inbound'"),
            messages,
        ),
        "distinct message provider ids": (
            database.value("select count(distinct provider_id) from tickets_message where direction = 'inbound'"),
            messages,
        ),
        "customers": (database.value("select count(*) from customers_customer"), customers),
        "customer identities": (database.value("select count(*) from customers_customeridentity"), customers),
        "tickets": (database.value("select count(*) from tickets_ticket"), customers),
        "customers with a ticket": (
            database.value("select count(distinct customer_id) from tickets_ticket"),
            customers,
        ),
        "ticket_created timeline events": (
            database.value("select count(*) from tickets_timelineevent where type = 'ticket_created'"),
            customers,
        ),
        "messages on another customer's ticket": (
            database.value(
                """
                select count(*) from tickets_message message
                join tickets_ticket ticket on ticket.id = message.ticket_id
                where message.customer_id <> ticket.customer_id
                """
            ),
            0,
        ),
        "senders whose message count differs": (
            sum(1 for value, count in expected_per_sender.items() if per_sender.get(value) != count)
            + len(set(per_sender) - set(expected_per_sender)),
            0,
        ),
    }
    return {name: {"actual": actual, "expected": want, "ok": actual == want} for name, (actual, want) in found.items()}


def versions(database: Database, *, is_sqlite: bool) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("django", "djangorestframework", "celery", "uvicorn", "psycopg", "httpx"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    found["database"] = (
        f"SQLite {sqlite3.sqlite_version}" if is_sqlite else database.value("select version()").split(" on ")[0]
    )
    return found


# --- Main ------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, *, work_dir: Path, processes: Processes) -> dict:
    started_monotonic = time.monotonic()
    load_at_start = [round(value, 2) for value in os.getloadavg()]  # other work on the machine skews the figures
    deadline = started_monotonic + args.timeout
    rng = random.Random(args.seed)
    senders = make_senders(count=args.customers, phone_share=args.phone_share, rng=rng)
    posts, expected_per_sender = make_posts(count=args.messages, senders=senders, rng=rng)
    duplicate_posts = rng.sample(posts, args.duplicates)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = processes.env
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": args.settings,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PUBLIC_BASE_URL": base_url,
            "HELPDESK_VAR_DIR": str(work_dir / "var"),
            "MEDIA_ROOT": str(work_dir / "var" / "media"),
            "SECRET_KEY": "benchmark-only-" + "x" * 40,
            "LOG_LEVEL": args.log_level,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "INBOUND_MAX_ATTEMPTS": str(INBOUND_MAX_ATTEMPTS),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if args.conn_max_age is not None:
        env["DATABASE_CONN_MAX_AGE"] = str(args.conn_max_age)
    if args.sqlite:
        database = Database(sqlite_path=work_dir / "var" / "helpdesk.sqlite3")
        backend = "sqlite"
    else:
        database_url = recreate_postgres_database(admin_url=args.postgres_url, name=args.database_name)
        redis.Redis.from_url(args.redis_url).flushdb()
        env.update({"DATABASE_URL": database_url, "REDIS_URL": args.redis_url, "CELERY_BROKER_URL": args.redis_url})
        database = Database(postgres_url=database_url)
        backend = "postgresql"

    print(f"[bench] {backend}: migrating a fresh database", file=sys.stderr, flush=True)
    processes.run("migrate", [sys.executable, "manage.py", "migrate", "--noinput"], deadline=deadline)
    setup_output = processes.run("setup", [sys.executable, "manage.py", "shell", "-c", SETUP_CODE], deadline=deadline)
    setup_line = next((line for line in setup_output.splitlines() if line.startswith("BENCH_SETUP ")), None)
    if setup_line is None:
        raise BenchmarkError(f"the channel setup printed no result:\n{setup_output[-2000:]}")
    setup = json.loads(setup_line.removeprefix("BENCH_SETUP "))

    print(
        f"[bench] starting uvicorn ({args.workers} workers) on {base_url} and Celery ({args.celery_concurrency})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn_start(processes, port=port, workers=args.workers)
    worker_log = processes.start(
        "celery",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "helpdesk",
            "worker",
            "--concurrency",
            str(args.celery_concurrency),
            "--loglevel",
            "INFO",
            "--hostname",
            f"bench-{os.getpid()}@%h",
        ],
        extra_env=(
            {"DATABASE_CONN_MAX_AGE": str(args.worker_conn_max_age)} if args.worker_conn_max_age is not None else None
        ),
    )
    wait_until(lambda: _server_healthy(base_url), what="the server's /healthz", deadline=deadline, processes=processes)
    wait_until(lambda: _worker_ready(worker_log), what="the Celery worker", deadline=deadline, processes=processes)
    if event_counts(database)["total"] != 0:
        raise BenchmarkError("the benchmark database is not empty")
    database.close()  # so the peak connection count is the server's and the workers' (plus the poller's own)

    print(
        f"[bench] posting {args.messages} messages from {args.customers} senders, concurrency {args.concurrency}",
        file=sys.stderr,
        flush=True,
    )
    progress = ProgressLog(expected=args.messages)
    stop_polling = threading.Event()
    first_post = time.perf_counter()
    poller = threading.Thread(
        target=poll_processing,
        kwargs={
            "database": Database(postgres_url=database.postgres_url, sqlite_path=database.sqlite_path),
            "first_post": first_post,
            "deadline": deadline,
            "stop": stop_polling,
            "log": progress,
        },
        name="poller",
        daemon=True,
    )
    cpu_at_start = (machine_cpu(), processes.cpu_seconds(), client_cpu_seconds())
    poller.start()
    try:
        answers = post_all(
            base_url=base_url,
            token=setup["token"],
            channel_id=setup["channel_id"],
            posts=posts,
            concurrency=args.concurrency,
            deadline=deadline,
        )
        posting_seconds = max(answer.started + answer.seconds for answer in answers) - first_post
        processed_when_posted = progress.samples[-1][1] if progress.samples else 0
        cpu_at_posted = (machine_cpu(), processes.cpu_seconds(), client_cpu_seconds())
        # Wait only for what was accepted: refused posts are reported, not waited for until the timeout.
        progress.expected = sum(1 for answer in answers if answer.status == 202)
        event_ids = {answer.index: answer.event_id for answer in answers}
        progress.posting_done = True
        duplicate_answers = post_all(
            base_url=base_url,
            token=setup["token"],
            channel_id=setup["channel_id"],
            posts=duplicate_posts,
            concurrency=args.concurrency,
            deadline=deadline,
        )
        while poller.is_alive():
            poller.join(0.2)
            processes.check_alive()
        cpu_at_end = (machine_cpu(), processes.cpu_seconds(), client_cpu_seconds())
    finally:
        stop_polling.set()
    if progress.stalled_counts:
        counts = progress.stalled_counts
        raise BenchmarkError(
            f"no progress for {STALL_SECONDS} s with {counts['processed']} of {progress.expected} accepted events "
            f"processed ({counts['total'] - counts['processed']} not): their tasks were lost or failed; see the "
            f"worker log. Peak PostgreSQL connections: {progress.peak_connections}."
        )
    if not progress.terminal_counts:
        raise BenchmarkError(
            f"the global timeout ({args.timeout:.0f} s) passed before all {progress.expected} accepted events were "
            "processed "
            f"(last count: {progress.samples[-1][1] if progress.samples else 0})"
        )

    statuses = Counter(answer.status for answer in answers)
    accepted = statuses.get(202, 0)
    non_2xx = sum(count for status, count in statuses.items() if status is None or not 200 <= status < 300)
    duplicates_ok = sum(
        1
        for answer in duplicate_answers
        if answer.status == 200 and answer.is_duplicate is True and answer.event_id == event_ids.get(answer.index)
    )
    all_processed_seconds = (
        progress.all_processed_at - first_post if progress.all_processed_at is not None else math.nan
    )
    server_span = database.value(
        "select extract(epoch from max(processed_at) - min(received_at)) from channels_app_inboundevent"
        if not args.sqlite
        else "select (julianday(max(processed_at)) - julianday(min(received_at))) * 86400 "
        "from channels_app_inboundevent"
    )
    checks = correctness_checks(
        database=database,
        messages=args.messages,
        customers=args.customers,
        expected_per_sender=expected_per_sender,
        counts=event_counts(database),
    )
    checks["non-2xx answers"] = {"actual": non_2xx, "expected": 0, "ok": non_2xx == 0}
    checks["202 accepted"] = {"actual": accepted, "expected": args.messages, "ok": accepted == args.messages}
    checks["duplicates answered 200 with the original event"] = {
        "actual": duplicates_ok,
        "expected": args.duplicates,
        "ok": duplicates_ok == args.duplicates,
    }
    errors = [f"{answer.status}: {answer.error}" for answer in [*answers, *duplicate_answers] if answer.error][:5]
    return {
        "benchmark": "api_ingest",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": backend,
        "config": {
            "messages": args.messages,
            "customers": args.customers,
            "phone_senders": sum(1 for sender in senders if sender.kind == "phone"),
            "duplicates": args.duplicates,
            "concurrency": args.concurrency,
            "uvicorn_workers": args.workers,
            "celery_concurrency": args.celery_concurrency,
            "settings": args.settings,
            "log_level": args.log_level,
            "conn_max_age": args.conn_max_age if args.conn_max_age is not None else "settings default",
            "worker_conn_max_age": (
                args.worker_conn_max_age if args.worker_conn_max_age is not None else "settings default"
            ),
            "seed": args.seed,
            "mean_body_bytes": round(sum(len(post.body) for post in posts) / len(posts)),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        },
        "versions": versions(database, is_sqlite=args.sqlite),
        "posting": {
            "requests": len(answers),
            "accepted_202": accepted,
            "wall_seconds": round(posting_seconds, 3),
            "accepted_per_second": round(accepted / posting_seconds, 1),
            "latency_ms": latency_figures(answers),
            "status_counts": {str(status): count for status, count in sorted(statuses.items(), key=str)},
            "non_2xx": non_2xx,
            "processed_when_posting_ended": processed_when_posted,
            "error_samples": errors,
        },
        "duplicates": {
            "posted": len(duplicate_answers),
            "answered_200_duplicate": duplicates_ok,
            "latency_ms": latency_figures(duplicate_answers),
        },
        "processing": {
            "seconds_until_all_processed": round(all_processed_seconds, 2),
            "seconds_after_posting_ended": round(all_processed_seconds - posting_seconds, 2),
            "messages_per_second": round(args.messages / all_processed_seconds, 1),
            "server_span_seconds": round(float(server_span), 2) if server_span is not None else None,
            "poll_interval_seconds": POLL_SECONDS,
            "peak_database_connections": progress.peak_connections if not args.sqlite else None,
        },
        "cpu": {
            "machine_busy_percent_while_posting": busy_percent(cpu_at_start[0], cpu_at_posted[0]),
            "machine_busy_percent_after_posting": busy_percent(cpu_at_posted[0], cpu_at_end[0]),
            "server_seconds": round(cpu_at_end[1]["uvicorn"] - cpu_at_start[1]["uvicorn"], 2),
            "worker_seconds": round(cpu_at_end[1]["celery"] - cpu_at_start[1]["celery"], 2),
            "client_seconds": round(cpu_at_end[2] - cpu_at_start[2], 2),
            "server_ms_per_message": round(
                (cpu_at_end[1]["uvicorn"] - cpu_at_start[1]["uvicorn"]) * 1000 / args.messages, 1
            ),
            "worker_ms_per_message": round(
                (cpu_at_end[1]["celery"] - cpu_at_start[1]["celery"]) * 1000 / args.messages, 1
            ),
            "note": "server and worker: their processes' user+system time; the database's is not included",
        },
        "checks": checks,
        "ok": all(check["ok"] for check in checks.values()),
    }


def summary(result: dict, *, results_path: Path) -> str:
    config, posting, processing = result["config"], result["posting"], result["processing"]
    latency, duplicates, cpu = posting["latency_ms"], result["duplicates"], result["cpu"]
    failed = [name for name, check in result["checks"].items() if not check["ok"]]
    lines = [
        f"API ingest benchmark on {result['versions']['database']}: {config['uvicorn_workers']} uvicorn workers, "
        f"{config['celery_concurrency']} Celery processes, {config['cpus']} CPUs",
        f"  messages posted      {config['messages']} from {config['customers']} senders "
        f"({config['phone_senders']} by phone), ~{config['mean_body_bytes']} B each, "
        f"concurrency {config['concurrency']}",
        f"  accepted (202)       {posting['accepted_202']} in {posting['wall_seconds']:.2f} s = "
        f"{posting['accepted_per_second']:.1f} messages/s",
        f"  latency ms           p50 {latency['p50']:.1f}  p95 {latency['p95']:.1f}  p99 {latency['p99']:.1f}  "
        f"max {latency['max']:.1f}",
        f"  non-2xx answers      {posting['non_2xx']}",
        f"  duplicates           {duplicates['answered_200_duplicate']}/{duplicates['posted']} answered 200 duplicate "
        "(original event, not counted again)",
        f"  all processed after  {processing['seconds_until_all_processed']:.2f} s from the first post "
        f"({processing['seconds_after_posting_ended']:.2f} s after the last answer; "
        f"{posting['processed_when_posting_ended']} were done by then)",
        f"  processing rate      {processing['messages_per_second']:.1f} messages/s"
        + (
            f" (peak {processing['peak_database_connections']} PostgreSQL connections)"
            if processing["peak_database_connections"] is not None
            else ""
        ),
        f"  CPU per message      server {cpu['server_ms_per_message']:.1f} ms, "
        f"worker {cpu['worker_ms_per_message']:.1f} ms "
        f"(machine {cpu['machine_busy_percent_while_posting']:.0f}% busy while posting, "
        f"{cpu['machine_busy_percent_after_posting']:.0f}% after)",
        f"  checks               {'all passed' if not failed else 'FAILED: ' + ', '.join(failed)} "
        f"({len(result['checks']) - len(failed)}/{len(result['checks'])})",
    ]
    for name in failed:
        check = result["checks"][name]
        lines.append(f"    {name}: {check['actual']} (expected {check['expected']})")
    if posting["error_samples"]:
        lines.append("  error samples        " + " | ".join(posting["error_samples"]))
    lines.append(f"  results              {results_path.relative_to(REPO_DIR)}")
    return "\n".join(lines)


def _raise_on_sigterm(signum, frame) -> None:
    print("[bench] terminated", file=sys.stderr)
    raise SystemExit(128 + signum)


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
            # As docker-compose.yml runs it: no per-message compression of websocket frames (see the README).
            "--ws-per-message-deflate",
            "false",
            "--ws-max-size",
            "65536",
        ],
    )


def benchmark_main(*, args, result_prefix: str, run, summary, work_prefix: str = "helpdesk-bench-") -> int:
    """The life of one benchmark run, shared by the benchmarks that start servers: signals, a work directory,
    ``run(args, work_dir=, processes=)``, the result JSON under ``results/<result_prefix><time>.json``, the printed
    ``summary(result, results_path=)``, and every started process stopped whatever happens. Exit code 0 when every
    check passed, 1 when one failed, 2 when the run was aborted, 130 on Ctrl-C."""
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
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        results_path = RESULTS_DIR / f"{result_prefix}{stamp}.json"
        results_path.write_text(json.dumps(result, indent=2) + "\n")
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prefix = f"api_ingest-{'sqlite-' if args.sqlite else ''}"
    return benchmark_main(args=args, result_prefix=prefix, run=run, summary=summary)


if __name__ == "__main__":
    sys.exit(main())
