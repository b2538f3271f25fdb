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
import json
import math
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

# Run as a script, this directory is on sys.path: what every benchmark shares is in harness.py.
from harness import (
    REPO_DIR,
    BenchmarkError,
    Database,
    Processes,
    benchmark_main,
    busy_percent,
    celery_start,
    checks_lines,
    client_cpu_seconds,
    closing_lines,
    fan_out,
    free_port,
    latency_figures,
    load_average,
    log_says,
    machine_cpu,
    migrate_and_set_up,
    recreate_postgres_database,
    server_environment,
    server_healthy,
    service_urls_check,
    services_environment,
    uvicorn_start,
    versions,
    wait_until,
)

INBOUND_MAX_ATTEMPTS = 5
POLL_SECONDS = 0.1
# After posting, this long without one more event finished means the rest will not be (a lost task waits for
# beat's requeue sweep, which the benchmark does not run): stop and say so rather than wait for --timeout.
STALL_SECONDS = 60
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
        service_urls_check(parser, postgres_url=args.postgres_url, redis_url=args.redis_url)
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


# --- Posting ---------------------------------------------------------------------------------------------------


def post_all(
    *, base_url: str, token: str, channel_id: int, posts: list[Post], concurrency: int, deadline: float
) -> list[Answer]:
    """Post every message once from ``concurrency`` threads, each with its own keep-alive connection."""
    url = f"/api/v1/channels/{channel_id}/messages"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(client: httpx.Client, slot: int) -> Answer:
        post = posts[slot]
        started = time.perf_counter()
        try:
            response = client.post(url, content=post.body)
        except httpx.HTTPError as exc:
            return Answer(post.index, started, time.perf_counter() - started, None, error=repr(exc))
        seconds = time.perf_counter() - started
        answer = Answer(post.index, started, seconds, response.status_code)
        if response.is_success:
            body = response.json()
            answer.event_id, answer.is_duplicate = body.get("id"), body.get("duplicate")
        else:
            answer.error = response.text[:300]
        return answer

    return fan_out(
        count=len(posts),
        concurrency=concurrency,
        deadline=deadline,
        open_client=lambda: httpx.Client(base_url=base_url, headers=headers, timeout=30),
        send=send,
    )


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


# --- Main ------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, *, work_dir: Path, processes: Processes) -> dict:
    started_monotonic = time.monotonic()
    load_at_start = load_average()
    deadline = started_monotonic + args.timeout
    rng = random.Random(args.seed)
    senders = make_senders(count=args.customers, phone_share=args.phone_share, rng=rng)
    posts, expected_per_sender = make_posts(count=args.messages, senders=senders, rng=rng)
    duplicate_posts = rng.sample(posts, args.duplicates)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = processes.env
    env.update(
        server_environment(settings=args.settings, base_url=base_url, work_dir=work_dir, log_level=args.log_level)
    )
    env["INBOUND_MAX_ATTEMPTS"] = str(INBOUND_MAX_ATTEMPTS)
    if args.conn_max_age is not None:
        env["DATABASE_CONN_MAX_AGE"] = str(args.conn_max_age)
    if args.sqlite:
        database = Database(sqlite_path=work_dir / "var" / "helpdesk.sqlite3")
        backend = "sqlite"
    else:
        database_url = recreate_postgres_database(admin_url=args.postgres_url, name=args.database_name)
        redis.Redis.from_url(args.redis_url).flushdb()
        env.update(services_environment(database_url=database_url, redis_url=args.redis_url))
        database = Database(postgres_url=database_url)
        backend = "postgresql"

    print(f"[bench] {backend}: migrating a fresh database", file=sys.stderr, flush=True)
    setup = migrate_and_set_up(processes, setup_code=SETUP_CODE, deadline=deadline)

    print(
        f"[bench] starting uvicorn ({args.workers} workers) on {base_url} and Celery ({args.celery_concurrency})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn_start(processes, port=port, workers=args.workers)
    worker_log = celery_start(
        processes,
        concurrency=args.celery_concurrency,
        hostname=f"bench-{os.getpid()}@%h",
        extra_env=(
            {"DATABASE_CONN_MAX_AGE": str(args.worker_conn_max_age)} if args.worker_conn_max_age is not None else None
        ),
    )
    wait_until(lambda: server_healthy(base_url), what="the server's /healthz", deadline=deadline, processes=processes)
    wait_until(
        lambda: log_says(worker_log, " ready."), what="the Celery worker", deadline=deadline, processes=processes
    )
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
            "load_average_at_end": load_average(),
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
        *checks_lines(result["checks"]),
        *closing_lines(error_samples=posting["error_samples"], results=results_path.relative_to(REPO_DIR)),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prefix = f"api_ingest-{'sqlite-' if args.sqlite else ''}"
    return benchmark_main(args=args, result_prefix=prefix, run=run, summary=summary)


if __name__ == "__main__":
    sys.exit(main())
