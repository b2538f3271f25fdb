"""Live chat latency: customer-to-agent delivery over a real uvicorn server with Redis and PostgreSQL.

Opens ``--sessions`` (200) chat sessions through the widget's REST API (``POST session``), one websocket per
visitor (``chat/ws/<public_key>/``) and one agent websocket (``ws/agent/``, the agents' group). Then every visitor
posts ``--messages`` messages over REST (``POST messages``) with a think time between them, and for each message
it measures the time from just before the visitor's POST to the moment the agent's websocket receives that message
(matched by a marker in the text). Prints p50/p95/p99/max of that delivery latency and of the POST itself, and the
messages that never reached the agent (must be 0). Target: delivery p99 under 50 ms.

Everything runs on 127.0.0.1 and is created by the script: a PostgreSQL database (dropped first), a Redis database
number for the channel layer, cache and presence (flushed first), a chat channel and an agent with a session, and
the server. No Celery worker: the widget's messages are taken in within the request. Every process it starts is
stopped on exit, error or Ctrl-C. The process and database handling is every benchmark's (harness.py).

    .venv/bin/python benchmarks/chat_latency.py                      # 200 sessions x 3 messages, 2 workers
    .venv/bin/python benchmarks/chat_latency.py --workers 1 --think-time 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import redis
import websockets

# Run as a script, this directory is on sys.path: what every benchmark shares is in harness.py.
from harness import (
    BenchmarkError,
    Database,
    Processes,
    benchmark_main,
    busy_percent,
    check,
    checks_lines,
    closing_lines,
    free_port,
    load_average,
    machine_cpu,
    migrate_and_set_up,
    percentile,
    percentiles_ms,
    recreate_postgres_database,
    server_environment,
    server_healthy,
    service_urls_check,
    services_environment,
    uvicorn_start,
    versions,
    wait_until,
)
from websockets.asyncio.client import connect as websocket_connect

SITE_ORIGIN = "https://shop.bench.example"
SETUP_CODE = """
import json
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from agents.models import AgentProfile
from channels_app.models import Channel
from channels_app.services.channels import channel_create

channel = channel_create(kind=Channel.Kind.CHAT, name="Benchmark chat", settings={"allowed_origins": [ORIGIN]})
user = get_user_model().objects.create_user(username="bench-agent")
AgentProfile.objects.create(user=user, display_name="Bench Agent")
client = Client()
client.force_login(user)
cookie = client.cookies[settings.SESSION_COOKIE_NAME]
print("BENCH_SETUP " + json.dumps({"public_key": channel.public_key, "cookie": f"{cookie.key}={cookie.value}"}))
""".replace("ORIGIN", repr(SITE_ORIGIN))
MARKER = re.compile(r"^\[bench (\d+)\]")
SERVER_TIMING = re.compile(r"(\w+);dur=([0-9.]+)")
WORDS = ("hello", "my", "order", "has", "not", "arrived", "yet", "could", "you", "check", "the", "parcel", "please")


@dataclass
class Figures:
    posted_at: dict[int, float] = field(default_factory=dict)  # message index -> perf_counter before the POST
    post_seconds: dict[int, float] = field(default_factory=dict)
    server_app_seconds: list[float] = field(default_factory=list)  # the response's Server-Timing "app"
    server_wait_seconds: list[float] = field(default_factory=list)  # and "wait"
    server_push_seconds: list[float] = field(default_factory=list)  # and "push" (part of "app")
    server_cpu_seconds: list[float] = field(default_factory=list)  # and "cpu" (the request thread's, in "app")
    server_db_seconds: list[float] = field(default_factory=list)  # and "db" (SQL statements, in "app")
    server_timing: dict[int, dict[str, float]] = field(default_factory=dict)  # message index -> all of them, s
    received_at: dict[int, float] = field(default_factory=dict)  # at the agent's websocket
    statuses: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    visitor_events: int = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=200, help="concurrent chat sessions (default 200)")
    parser.add_argument("--messages", type=int, default=3, help="messages per session (default 3)")
    parser.add_argument(
        "--think-time", type=float, default=5.0, help="mean seconds between a visitor's messages (default 5)"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="how visitors post: one hand-written HTTP/1.1 request per write (default), or httpx (its own "
        "processor time counted in the latency)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="abort after this many seconds (default 600)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="visitors (not measured, not among --sessions) who each post one message first, over connections of "
        "their own, so every server process has taken a message in and opened a ticket before measuring "
        "(default 10 per worker; 0: measure from a cold start)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database-name", default="helpdesk_chat_bench", help="dropped first")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6", help="a dedicated DB number, flushed")
    parser.add_argument(
        "--settings",
        default="helpdesk.settings",
        help="DJANGO_SETTINGS_MODULE, to compare a variant (default helpdesk.settings)",
    )
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the server (default WARNING)")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument(
        "--no-db-pool",
        action="store_true",
        help="the server opens a connection per request instead of borrowing from psycopg's pool (DATABASE_POOL=false)",
    )
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = 10 * args.workers
    if args.sessions < 1 or args.messages < 1 or args.workers < 1 or args.think_time < 0 or args.warmup < 0:
        parser.error("--sessions, --messages and --workers must be at least 1, --think-time not negative")
    service_urls_check(parser, postgres_url=args.postgres_url, redis_url=args.redis_url)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database_name):
        parser.error("--database-name must be a plain lower-case identifier")
    return args


# --- The clients -----------------------------------------------------------------------------------------------


async def start_sessions(*, http: httpx.AsyncClient, public_key: str, count: int) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(number: int) -> str:
        async with gate:
            response = await http.post(f"/chat/api/{public_key}/session", json={"name": f"Visitor {number}"})
        if response.status_code not in (200, 201):
            raise BenchmarkError(f"POST session answered {response.status_code}: {response.text[:300]}")
        return response.json()["visitor_token"]

    return await asyncio.gather(*(one(number) for number in range(count)))


async def warm_up(*, base_url: str, http: httpx.AsyncClient, public_key: str, count: int) -> None:
    """A first message from ``count`` other visitors, a few at a time, each over a new connection (which the kernel
    hands to any of the server's processes): the first message a process takes in pays for its first ticket, its
    first task sent and its first connections to Redis; a server that has been up a while has paid already."""
    tokens = await start_sessions(http=http, public_key=public_key, count=count)
    gate = asyncio.Semaphore(4)

    async def one(number: int, token: str) -> None:
        async with gate:
            connection = RawConnection(base_url)
            try:
                answer = await connection.post_json(
                    f"/chat/api/{public_key}/messages",
                    {"client_id": f"warm-{number}", "text": "warming up"},
                    {"X-Visitor-Token": token, "Origin": SITE_ORIGIN},
                )
            finally:
                connection.close()
        if answer.status_code != 201:
            raise BenchmarkError(f"a warm-up message answered {answer.status_code}: {answer.text[:300]}")

    await asyncio.gather(*(one(number, token) for number, token in enumerate(tokens)))
    await asyncio.sleep(1)  # their pushes and routing tasks sent
    print(f"[bench] {count} warm-up messages taken in (not measured)", file=sys.stderr, flush=True)


async def agent_listen(socket, figures: Figures, *, expected: int, all_received: asyncio.Event) -> None:
    async for raw in socket:
        now = time.perf_counter()
        event = json.loads(raw)
        if event.get("type") != "message" or event["message"]["direction"] != "inbound":
            continue
        match = MARKER.match(event["message"]["text"])
        if match is not None:
            figures.received_at.setdefault(int(match[1]), now)
            if len(figures.received_at) >= expected:
                all_received.set()


async def visitor_drain(socket, figures: Figures) -> None:
    """Visitors get their own messages back (other tabs); read them so nothing queues up."""
    async for _raw in socket:
        figures.visitor_events += 1


@dataclass
class RawAnswer:
    status_code: int
    headers: dict[str, str]  # lower-case names
    text: str


class RawConnection:
    """One visitor's keep-alive HTTP/1.1 connection, written by hand: the request goes out in one write and the
    answer is read by its Content-Length. The load generator shares the machine's two processors with the server,
    and httpx spends a few milliseconds of its processor time per request (building it, its connection pool): time
    that was measured as the server's delivery latency. ``--client httpx`` measures with httpx, to compare."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, payload: dict, headers: dict[str, str]) -> RawAnswer:
        if self.writer is None or self.writer.is_closing() or self.reader.at_eof():
            # First use, or the server closed the idle connection (uvicorn's keep-alive timeout is 5 s, shorter
            # than the think time): a new one, as a browser or httpx would open, its time counted.
            if self.writer is not None:
                self.writer.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps(payload).encode()
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status_code = int(lines[0].split(" ", 2)[1])
        answer_headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                answer_headers[name.strip().lower()] = value.strip()
        if "content-length" not in answer_headers:
            raise BenchmarkError(f"an answer without Content-Length: {lines[:3]}")
        text = (await self.reader.readexactly(int(answer_headers["content-length"]))).decode()
        if answer_headers.get("connection", "").lower() == "close":
            self.writer.close()
        return RawAnswer(status_code=status_code, headers=answer_headers, text=text)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def visitor_talk(
    *,
    http: httpx.AsyncClient,
    base_url: str,
    public_key: str,
    token: str,
    number: int,
    args,
    rng: random.Random,
    figures: Figures,
) -> None:
    headers = {"X-Visitor-Token": token}
    raw = RawConnection(base_url) if args.client == "raw" else None
    path = f"/chat/api/{public_key}/messages"
    try:
        for sequence in range(args.messages):
            await asyncio.sleep(args.think_time * rng.uniform(0.5, 1.5))
            index = number * args.messages + sequence
            text = f"[bench {index}] " + " ".join(rng.choices(WORDS, k=rng.randint(4, 16)))
            payload = {"client_id": f"m-{index}", "text": text}
            figures.posted_at[index] = started = time.perf_counter()
            try:
                if raw is not None:
                    response = await raw.post_json(path, payload, {**headers, "Origin": SITE_ORIGIN})
                else:
                    response = await http.post(path, json=payload, headers=headers)
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError) as exc:
                figures.statuses["error"] = figures.statuses.get("error", 0) + 1
                figures.errors.append(repr(exc)[:200])
                continue
            _record_answer(figures, index=index, started=started, response=response)
    finally:
        if raw is not None:
            raw.close()


def _record_answer(figures: Figures, *, index: int, started: float, response) -> None:
    figures.post_seconds[index] = time.perf_counter() - started
    timing = dict(SERVER_TIMING.findall(response.headers.get("server-timing", "")))
    if "app" in timing and "wait" in timing:
        figures.server_app_seconds.append(float(timing["app"]) / 1000)
        figures.server_wait_seconds.append(float(timing["wait"]) / 1000)
    if "push" in timing:
        figures.server_push_seconds.append(float(timing["push"]) / 1000)
    if "cpu" in timing:
        figures.server_cpu_seconds.append(float(timing["cpu"]) / 1000)
    if "db" in timing:
        figures.server_db_seconds.append(float(timing["db"]) / 1000)
    figures.server_timing[index] = {name: float(value) / 1000 for name, value in timing.items()}
    key = str(response.status_code)
    figures.statuses[key] = figures.statuses.get(key, 0) + 1
    if response.status_code != 201:
        figures.errors.append(f"{response.status_code}: {response.text[:200]}")


async def drive(*, args, base_url: str, setup: dict, deadline: float) -> Figures:
    figures = Figures()
    rng = random.Random(args.seed)
    ws_url = base_url.replace("http://", "ws://")
    public_key = setup["public_key"]
    limits = httpx.Limits(max_connections=args.sessions, max_keepalive_connections=args.sessions)
    async with httpx.AsyncClient(base_url=base_url, headers={"Origin": SITE_ORIGIN}, timeout=30, limits=limits) as http:
        tokens = await start_sessions(http=http, public_key=public_key, count=args.sessions)
        if args.warmup:
            await warm_up(base_url=base_url, http=http, public_key=public_key, count=args.warmup)
        print(f"[bench] {len(tokens)} sessions started; opening websockets", file=sys.stderr, flush=True)
        agent = await websocket_connect(
            f"{ws_url}/ws/agent/", origin=base_url, additional_headers={"Cookie": setup["cookie"]}, max_queue=None
        )
        gate = asyncio.Semaphore(20)

        async def open_visitor(token: str):
            async with gate:
                return await websocket_connect(
                    f"{ws_url}/chat/ws/{public_key}/?token={quote(token)}", origin=SITE_ORIGIN, max_queue=None
                )

        visitors = await asyncio.gather(*(open_visitor(token) for token in tokens))
        expected = args.sessions * args.messages
        all_received = asyncio.Event()
        listeners = [asyncio.create_task(agent_listen(agent, figures, expected=expected, all_received=all_received))]
        listeners += [asyncio.create_task(visitor_drain(socket, figures)) for socket in visitors]
        print(
            f"[bench] {len(visitors)} visitor websockets and 1 agent websocket open; posting {expected} messages",
            file=sys.stderr,
            flush=True,
        )
        talkers = [
            visitor_talk(
                http=http,
                base_url=base_url,
                public_key=public_key,
                token=token,
                number=number,
                args=args,
                rng=random.Random(rng.random()),
                figures=figures,
            )
            for number, token in enumerate(tokens)
        ]
        await asyncio.wait_for(asyncio.gather(*talkers), max(1.0, deadline - time.monotonic()))
        # What has not arrived 5 s after the last answer is lost (counted, not waited for).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_received.wait(), 5)
        for task in listeners:
            task.cancel()
        for socket in [agent, *visitors]:
            await socket.close()
    return figures


def slowest_breakdown(figures: Figures, *, messages_per_session: int) -> dict:
    """Where the slowest 1 % of deliveries spent their time (medians over them, ms): what the server reported for
    the POST, and the rest (the client and the loopback both ways, and, for ``after_answer``, how long after the
    POST's answer the agent got the message; negative when it arrived first). ``first`` counts the visitors' first
    messages among them (those open a ticket)."""
    delivered = sorted(figures.received_at, key=lambda index: figures.received_at[index] - figures.posted_at[index])
    slowest = delivered[-max(1, len(delivered) // 100) :]
    if not slowest:
        return {}

    def median_ms(values: list[float]) -> float:
        return round(percentile(sorted(value * 1000 for value in values), 50), 2)

    timings = [figures.server_timing.get(index, {}) for index in slowest]
    parts = {
        "count": len(slowest),
        "first": sum(1 for index in slowest if index % messages_per_session == 0),
        "delivery": median_ms([figures.received_at[index] - figures.posted_at[index] for index in slowest]),
        "post": median_ms([figures.post_seconds.get(index, math.nan) for index in slowest]),
    }
    for name in ("wait", "app", "cpu", "db", "push"):
        parts[name] = median_ms([timing.get(name, 0.0) for timing in timings])
    # When they were posted, in seconds from the first post: slow ones bunched at the start are a cold server.
    first_post = min(figures.posted_at.values())
    parts["posted_at_s"] = sorted(round(figures.posted_at[index] - first_post, 1) for index in slowest)
    parts["after_answer"] = median_ms(
        [
            figures.received_at[index] - figures.posted_at[index] - figures.post_seconds.get(index, math.nan)
            for index in slowest
        ]
    )
    return parts


def figures_ms(values: list[float]) -> dict[str, float]:
    return {"count": len(values), **percentiles_ms(values)}


# --- Main ------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, *, work_dir: Path, processes: Processes) -> dict:
    deadline = time.monotonic() + args.timeout
    load_at_start = load_average()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    database_url = recreate_postgres_database(admin_url=args.postgres_url, name=args.database_name)
    redis.Redis.from_url(args.redis_url).flushdb()
    processes.env.update(
        server_environment(settings=args.settings, base_url=base_url, work_dir=work_dir, log_level=args.log_level)
    )
    processes.env.update(services_environment(database_url=database_url, redis_url=args.redis_url))
    processes.env["DATABASE_POOL"] = "false" if args.no_db_pool else "true"
    print("[bench] migrating a fresh database", file=sys.stderr, flush=True)
    setup = migrate_and_set_up(processes, setup_code=SETUP_CODE, deadline=deadline)

    print(f"[bench] starting uvicorn ({args.workers} workers) on {base_url}", file=sys.stderr, flush=True)
    uvicorn_start(processes, port=port, workers=args.workers)
    wait_until(lambda: server_healthy(base_url), what="the server's /healthz", deadline=deadline, processes=processes)
    cpu_start = machine_cpu()
    started = time.perf_counter()
    figures = asyncio.run(drive(args=args, base_url=base_url, setup=setup, deadline=deadline))
    wall = time.perf_counter() - started
    cpu_end = machine_cpu()
    processes.check_alive()

    delivered = [figures.received_at[index] - figures.posted_at[index] for index in figures.received_at]
    expected = args.sessions * args.messages
    created = figures.statuses.get("201", 0)
    lost = sorted(set(figures.posted_at) - set(figures.received_at))
    database = Database(postgres_url=database_url)
    try:
        stored = database.value("select count(*) from tickets_message where direction = 'inbound'")
        found_versions = versions(database, is_sqlite=False)
    finally:
        database.close()
    checks = {
        "messages answered 201": check(created, expected),
        "inbound messages stored": check(stored, expected + args.warmup),
        "messages the agent never received": check(len(lost), 0),
    }
    return {
        "benchmark": "chat_latency",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "sessions": args.sessions,
            "messages_per_session": args.messages,
            "think_time_seconds": args.think_time,
            "uvicorn_workers": args.workers,
            "client": args.client,
            "warmup_messages": args.warmup,
            "settings": args.settings,
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": load_average(),
            "websockets": websockets.__version__,
        },
        "versions": found_versions,
        "delivery_latency_ms": figures_ms(delivered),
        "post_latency_ms": figures_ms(list(figures.post_seconds.values())),
        "server_app_ms": figures_ms(figures.server_app_seconds),
        "server_wait_ms": figures_ms(figures.server_wait_seconds),
        "server_push_ms": figures_ms(figures.server_push_seconds),
        "server_cpu_ms": figures_ms(figures.server_cpu_seconds),
        "server_db_ms": figures_ms(figures.server_db_seconds),
        "slowest_percent_ms": slowest_breakdown(figures, messages_per_session=args.messages),
        "messages_per_second": round(expected / wall, 1),
        "machine_busy_percent": busy_percent(cpu_start, cpu_end),
        "statuses": figures.statuses,
        "visitor_events_received": figures.visitor_events,
        "error_samples": figures.errors[:5],
        "checks": checks,
        "ok": all(check["ok"] for check in checks.values()),
    }


def summary(result: dict, *, results_path: Path) -> str:
    config, delivery, post = result["config"], result["delivery_latency_ms"], result["post_latency_ms"]
    app, wait = result["server_app_ms"], result["server_wait_ms"]
    push = result.get("server_push_ms") or {"p50": float("nan"), "p99": float("nan")}
    cpu = result.get("server_cpu_ms") or {"p50": float("nan"), "p99": float("nan")}
    db = result.get("server_db_ms") or {"p50": float("nan"), "p99": float("nan")}
    slow = result.get("slowest_percent_ms") or {}
    lines = [
        f"Chat latency on {result['versions']['database']}: {config['uvicorn_workers']} uvicorn workers, "
        f"{config['cpus']} CPUs (machine {result['machine_busy_percent']:.0f}% busy)",
        f"  sessions             {config['sessions']} visitor websockets + 1 agent websocket, "
        f"{config['messages_per_session']} messages each, think time ~{config['think_time_seconds']} s "
        f"({result['messages_per_second']} messages/s, {config.get('client', 'httpx')} client, "
        f"{config.get('warmup_messages', 0)} warm-up messages first)",
        f"  visitor -> agent ms  p50 {delivery['p50']:.1f}  p95 {delivery['p95']:.1f}  p99 {delivery['p99']:.1f}  "
        f"max {delivery['max']:.1f}  ({delivery['count']} delivered; target p99 < 50)",
        f"  POST messages ms     p50 {post['p50']:.1f}  p95 {post['p95']:.1f}  p99 {post['p99']:.1f}  "
        f"max {post['max']:.1f}",
        f"  of which on server   app p50 {app['p50']:.1f}  p99 {app['p99']:.1f}  (on the request's thread: signals, "
        f"middleware, view);  wait p50 {wait['p50']:.1f}  p99 {wait['p99']:.1f}  (body, turn, to the thread and back)",
        f"  of which pushing     p50 {push['p50']:.1f}  p99 {push['p99']:.1f}  (part of app: handing the events "
        "to the channel layer after commit)",
        f"  request thread CPU   p50 {cpu['p50']:.1f}  p99 {cpu['p99']:.1f}  (of app; the rest is waiting on the "
        "database, Redis, the GIL or a processor)",
        f"  in SQL statements    p50 {db['p50']:.1f}  p99 {db['p99']:.1f}  (of app: sending them, PostgreSQL's "
        "work, the answers)",
        "  slowest 1 %          "
        + ", ".join(f"{name} {value}" for name, value in slow.items())
        + "  (medians over them, ms)",
        f"  answers              {result['statuses']}",
        *checks_lines(result["checks"], counted=False),
        *closing_lines(error_samples=result["error_samples"], results=results_path),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main(
        args=args, result_prefix="chat_latency-", run=run, summary=summary, work_prefix="helpdesk-chat-bench-"
    )


if __name__ == "__main__":
    sys.exit(main())
