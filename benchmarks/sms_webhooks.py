"""End-to-end benchmark of Twilio's inbound SMS webhook: real server, real database, signed like Twilio signs.

Posts N distinct inbound SMS webhooks to ``/inbound/sms/twilio/<public_key>/`` of a uvicorn server, each signed
with the ``twilio`` package's own ``RequestValidator.compute_signature`` over the exact URL and form, mixed with
replays (the same MessageSid posted again, as Twilio does after a timeout) and a few posts with a bad signature,
then prints:

- accepted posts/s (200 answers to validly signed posts divided by the wall time of the posting phase);
- p50/p95/p99/max latency of the accepted posts, and the count of answers by status code;
- with a Celery worker (the default; ``--no-worker`` skips it), the time until every stored event is processed
  into a message;
- checks: the stored InboundEvent count equals the distinct accepted MessageSids (a replay is stored once, a bad
  signature stores nothing); every valid post answered 200 and every bad one 403; with the worker, every event
  processed into one inbound message and one customer per sender.

The payloads carry no media (``NumMedia=0``): a media URL would make the worker fetch from Twilio, and the run
sends traffic only to this machine.

Usage (PostgreSQL at 127.0.0.1:5432 as ``postgres`` without a password, Redis at 127.0.0.1:6379)::

    .venv/bin/python benchmarks/sms_webhooks.py                          # 2000 webhooks, 16 concurrent clients
    .venv/bin/python benchmarks/sms_webhooks.py --messages 200 --concurrency 8
    .venv/bin/python benchmarks/sms_webhooks.py --replay-share 0.1 --bad-signatures 50 --no-worker
    .venv/bin/python benchmarks/sms_webhooks.py --help                   # every option

It drops and creates the database ``helpdesk_bench_sms`` (``--database-name``), flushes Redis database 6
(``--redis-url``; 0 is refused), migrates, creates the SMS channel through ``channel_create`` in a
``manage.py shell`` subprocess, and starts ``uvicorn helpdesk.asgi:application`` (DEBUG off, ``PUBLIC_BASE_URL``
set to its loopback URL, which is what the signatures cover) and, unless ``--no-worker``, a Celery worker. Every
process it starts is stopped, process group and all, on exit, error, Ctrl-C or SIGTERM (the process handling is
``benchmarks/harness.py``'s, shared by every benchmark). The result goes to ``benchmarks/results/sms_webhooks-<UTC
time>.json``. Exit code: 0 when every check passed, 1 when one failed, 2 when the run was aborted.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

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
    check,
    checks_lines,
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
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "benchmark-twilio-auth-token"
CHANNEL_NUMBER = "+14152009999"
POLL_SECONDS = 0.2
STALL_SECONDS = 60
SETUP_CODE = f"""
import json
from channels_app.models import Channel
from channels_app.services.channels import channel_create

channel = channel_create(
    kind=Channel.Kind.SMS,
    name="Benchmark SMS",
    provider="twilio",
    address="{CHANNEL_NUMBER}",
    settings={{"phone_region": "US"}},
    secrets={{"account_sid": "{ACCOUNT_SID}", "auth_token": "{AUTH_TOKEN}"}},
)
print("BENCH_SETUP " + json.dumps({{"channel_id": channel.pk, "public_key": channel.public_key}}))
"""
VOCABULARY = """order delivery refund account password payment card plan shipping address tracking package arrived
    damaged missing item replacement warranty thanks please hello could you help me with my the and since yesterday
    today still not working error screen app checkout coupon price charged twice receipt"""
WORDS = tuple(VOCABULARY.split())


@dataclass(frozen=True)
class Post:
    kind: str  # "new", "replay" or "bad_signature"
    message_sid: str
    form: dict[str, str]
    signature: str


@dataclass
class Answer:
    post: Post
    started: float  # perf_counter
    seconds: float
    status: int | None
    error: str = ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="distinct MessageSids to post (N, default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads posting at once (default 16)")
    parser.add_argument("--senders", type=int, default=0, help="distinct phone numbers sending (default N/10)")
    parser.add_argument(
        "--replay-share", type=float, default=0.05, help="share of messages posted a second time (default 0.05)"
    )
    parser.add_argument("--bad-signatures", type=int, default=-1, help="posts with a wrong signature (default N/100)")
    parser.add_argument("--no-worker", action="store_true", help="do not start a Celery worker to process events")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--celery-concurrency", type=int, default=2, help="Celery prefork processes (default 2)")
    parser.add_argument("--timeout", type=float, default=600, help="abort after this many seconds (default 600)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a database to connect to for dropping and creating the benchmark's (default: postgres on 127.0.0.1)",
    )
    parser.add_argument("--database-name", default="helpdesk_bench_sms", help="dropped first (default %(default)s)")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/6", help="a dedicated DB number, flushed (default /6)"
    )
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the server and worker (default WARNING)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server and worker logs after success")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1 or args.workers < 1 or args.celery_concurrency < 1:
        parser.error("--messages, --concurrency, --workers and --celery-concurrency must be at least 1")
    if not 0 <= args.replay_share <= 1:
        parser.error("--replay-share must be between 0 and 1")
    args.senders = min(args.senders or max(1, args.messages // 10), args.messages)
    if args.bad_signatures < 0:
        args.bad_signatures = max(5, args.messages // 100)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database_name) or "bench" not in args.database_name:
        parser.error("--database-name must be a plain lower-case identifier containing 'bench' (it is dropped)")
    service_urls_check(parser, postgres_url=args.postgres_url, redis_url=args.redis_url)
    return args


# --- Payloads --------------------------------------------------------------------------------------------------


def twilio_form(*, message_sid: str, sender: str, body: str) -> dict[str, str]:
    """The fields Twilio posts for an inbound SMS (as in tests/fixtures/twilio/sms.json)."""
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": message_sid,
        "NumMedia": "0",
        "ToCity": "SAN FRANCISCO",
        "FromZip": "94105",
        "SmsSid": message_sid,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": body,
        "FromCountry": "US",
        "To": CHANNEL_NUMBER,
        "ToZip": "94105",
        "NumSegments": "1",
        "MessageSid": message_sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def make_posts(*, args: argparse.Namespace, url: str, rng: random.Random) -> list[Post]:
    """N new messages, replays of a share of them, and the bad signatures, shuffled together: a replay may race
    its original, as a Twilio retry after a slow answer does."""
    validator = RequestValidator(AUTH_TOKEN)
    senders = [f"+1415{300 + number // 10_000}{number % 10_000:04d}" for number in range(args.senders)]
    posts = []
    for number in range(args.messages):
        sid = f"SM{rng.getrandbits(128):032x}"
        # At least four words, so no body is a lone keyword (STOP, HELP...) answered differently.
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 30)))
        form = twilio_form(message_sid=sid, sender=senders[number % len(senders)], body=body)
        posts.append(Post("new", sid, form, validator.compute_signature(url, form)))
    replays = [Post("replay", post.message_sid, post.form, post.signature) for post in posts]
    replays = rng.sample(replays, round(len(posts) * args.replay_share))
    bad = []
    for number in range(args.bad_signatures):
        sid = f"SMbad{number:027d}"
        form = twilio_form(message_sid=sid, sender=senders[0], body="this one is not from Twilio at all")
        # Signed with another token: well-formed, just not ours.
        bad.append(Post("bad_signature", sid, form, RequestValidator("not-the-token").compute_signature(url, form)))
    everything = posts + replays + bad
    rng.shuffle(everything)
    return everything


# --- Posting ---------------------------------------------------------------------------------------------------


def post_all(*, url: str, posts: list[Post], concurrency: int, deadline: float) -> list[Answer]:
    """Post everything from ``concurrency`` threads, each with its own keep-alive connection."""

    def send(client: httpx.Client, slot: int) -> Answer:
        post = posts[slot]
        headers = {SIGNATURE_HEADER: post.signature, "Content-Type": "application/x-www-form-urlencoded"}
        started = time.perf_counter()
        try:
            response = client.post(url, content=urlencode(post.form).encode(), headers=headers)
        except httpx.HTTPError as exc:
            return Answer(post, started, time.perf_counter() - started, None, repr(exc))
        seconds = time.perf_counter() - started
        error = "" if response.status_code == 200 else response.text[:300]
        return Answer(post, started, seconds, response.status_code, error)

    return fan_out(
        count=len(posts),
        concurrency=concurrency,
        deadline=deadline,
        open_client=lambda: httpx.Client(timeout=30),
        send=send,
    )


def wait_for_processing(*, database: Database, expected: int, deadline: float, processes: Processes) -> float:
    """Poll until ``expected`` events are processed; returns when (perf_counter). Raises on a stall or timeout."""
    last, last_change, last_report = -1, time.perf_counter(), 0.0
    while True:
        processes.check_alive()
        done, failed = database.rows(
            "select count(*) filter (where status in ('processed', 'quarantined')), "
            "count(*) filter (where status = 'failed') from channels_app_inboundevent"
        )[0]
        now = time.perf_counter()
        if done >= expected:
            return now
        if now - last_report > 2:
            print(f"  ... {done}/{expected} processed, {failed} failed", file=sys.stderr, flush=True)
            last_report = now
        if done != last:
            last, last_change = done, now
        elif now - last_change > STALL_SECONDS:
            raise BenchmarkError(f"no progress for {STALL_SECONDS} s at {done}/{expected} processed ({failed} failed)")
        if time.monotonic() > deadline:
            raise BenchmarkError(f"the global timeout passed with {done}/{expected} processed")
        time.sleep(POLL_SECONDS)


# --- Main ------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, *, work_dir: Path, processes: Processes) -> dict:
    load_at_start = load_average()
    deadline = time.monotonic() + args.timeout
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    database_url = recreate_postgres_database(admin_url=args.postgres_url, name=args.database_name)
    redis.Redis.from_url(args.redis_url).flushdb()
    processes.env.update(
        server_environment(settings="helpdesk.settings", base_url=base_url, work_dir=work_dir, log_level=args.log_level)
    )
    processes.env.update(services_environment(database_url=database_url, redis_url=args.redis_url))
    database = Database(postgres_url=database_url)
    print("[bench] migrating a fresh database", file=sys.stderr, flush=True)
    setup = migrate_and_set_up(processes, setup_code=SETUP_CODE, deadline=deadline)
    url = f"{base_url}/inbound/sms/twilio/{setup['public_key']}/"
    posts = make_posts(args=args, url=url, rng=random.Random(args.seed))

    print(f"[bench] starting uvicorn ({args.workers} workers) on {base_url}", file=sys.stderr, flush=True)
    uvicorn_start(processes, port=port, workers=args.workers)
    if not args.no_worker:
        worker_log = celery_start(
            processes, concurrency=args.celery_concurrency, hostname=f"bench-sms-{os.getpid()}@%h"
        )
        wait_until(
            lambda: log_says(worker_log, " ready."), what="the Celery worker", deadline=deadline, processes=processes
        )
    wait_until(lambda: server_healthy(base_url), what="the server's /healthz", deadline=deadline, processes=processes)

    print(
        f"[bench] posting {len(posts)} webhooks ({args.messages} new), concurrency {args.concurrency}",
        file=sys.stderr,
        flush=True,
    )
    cpu_at_start = machine_cpu()
    first_post = time.perf_counter()
    answers = post_all(url=url, posts=posts, concurrency=args.concurrency, deadline=deadline)
    posting_seconds = max(answer.started + answer.seconds for answer in answers) - first_post
    cpu_posted = machine_cpu()
    processed_at = None
    distinct_accepted = {a.post.message_sid for a in answers if a.status == 200 and a.post.kind != "bad_signature"}
    if not args.no_worker:
        processed_at = wait_for_processing(
            database=database, expected=len(distinct_accepted), deadline=deadline, processes=processes
        )

    accepted = [a for a in answers if a.status == 200 and a.post.kind != "bad_signature"]
    by_kind = {kind: Counter(a.status for a in answers if a.post.kind == kind) for kind in ("new", "replay")}
    by_kind["bad_signature"] = Counter(a.status for a in answers if a.post.kind == "bad_signature")
    posted = Counter(post.kind for post in posts)
    bad_sids = {post.message_sid for post in posts if post.kind == "bad_signature"}
    stored = database.value("select count(*) from channels_app_inboundevent")
    stored_sids = {row[0] for row in database.rows("select provider_id from channels_app_inboundevent")}
    checks = {
        "stored events = distinct accepted MessageSids": check(stored, len(distinct_accepted)),
        "stored MessageSids are the accepted ones": check(stored_sids == distinct_accepted, True),
        "new posts answered 200": check(by_kind["new"].get(200, 0), posted["new"]),
        "replays answered 200": check(by_kind["replay"].get(200, 0), posted["replay"]),
        "bad signatures answered 403": check(by_kind["bad_signature"].get(403, 0), posted["bad_signature"]),
        # By the exact sids: a random valid sid may itself start with "SMbad" (hex digits).
        "events of bad signatures": check(len(stored_sids & bad_sids), 0),
    }
    processing = None
    if processed_at is not None:
        counts = database.rows(
            "select (select count(*) from channels_app_inboundevent where status = 'processed'), "
            "(select count(*) from tickets_message where direction = 'inbound'), "
            "(select count(distinct provider_id) from tickets_message where direction = 'inbound'), "
            "(select count(*) from customers_customer)"
        )[0]
        checks["events processed"] = check(counts[0], len(distinct_accepted))
        checks["inbound messages"] = check(counts[1], len(distinct_accepted))
        checks["distinct message provider ids"] = check(counts[2], len(distinct_accepted))
        checks["customers (one per sender)"] = check(counts[3], args.senders)
        seconds = processed_at - first_post
        processing = {
            "seconds_until_all_processed": round(seconds, 2),
            "seconds_after_posting_ended": round(seconds - posting_seconds, 2),
            "messages_per_second": round(len(distinct_accepted) / seconds, 1),
        }
    database.close()
    statuses = Counter(answer.status for answer in answers)
    return {
        "benchmark": "sms_webhooks",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "messages": args.messages,
            "senders": args.senders,
            "replays": posted["replay"],
            "bad_signatures": posted["bad_signature"],
            "concurrency": args.concurrency,
            "uvicorn_workers": args.workers,
            "celery_concurrency": None if args.no_worker else args.celery_concurrency,
            "seed": args.seed,
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": load_average(),
        },
        "versions": versions(database, is_sqlite=False),
        "posting": {
            "requests": len(answers),
            "accepted": len(accepted),
            "wall_seconds": round(posting_seconds, 3),
            "accepted_per_second": round(len(accepted) / posting_seconds, 1),
            "latency_ms_accepted": latency_figures(accepted),
            "status_counts": {str(status): count for status, count in sorted(statuses.items(), key=str)},
            "status_counts_by_kind": {kind: dict(counter) for kind, counter in by_kind.items()},
            "machine_busy_percent": busy_percent(cpu_at_start, cpu_posted),
            "error_samples": [f"{a.status}: {a.error}" for a in answers if a.error and a.status != 403][:5],
        },
        "processing": processing,
        "checks": checks,
        "ok": all(item["ok"] for item in checks.values()),
    }


def summary(result: dict, *, results_path: Path) -> str:
    config, posting, latency = result["config"], result["posting"], result["posting"]["latency_ms_accepted"]
    lines = [
        f"SMS webhook benchmark on {result['versions']['database']}: {config['uvicorn_workers']} uvicorn workers, "
        f"{config['cpus']} CPUs (load {config['load_average_at_start'][0]} at start)",
        f"  posted               {posting['requests']}: {config['messages']} new, {config['replays']} replays, "
        f"{config['bad_signatures']} bad signatures; {config['senders']} senders, concurrency {config['concurrency']}",
        f"  accepted (200)       {posting['accepted']} in {posting['wall_seconds']:.2f} s = "
        f"{posting['accepted_per_second']:.1f}/s (machine {posting['machine_busy_percent']:.0f}% busy)",
        f"  latency ms accepted  p50 {latency['p50']:.1f}  p95 {latency['p95']:.1f}  p99 {latency['p99']:.1f}  "
        f"max {latency['max']:.1f}",
        f"  status codes         {posting['status_counts']}",
    ]
    if result["processing"]:
        processing = result["processing"]
        lines.append(
            f"  all processed after  {processing['seconds_until_all_processed']:.2f} s from the first post "
            f"({processing['seconds_after_posting_ended']:.2f} s after the last answer), "
            f"{processing['messages_per_second']:.1f} messages/s with {config['celery_concurrency']} Celery processes"
        )
    lines += checks_lines(result["checks"])
    lines += closing_lines(error_samples=posting["error_samples"], results=results_path.relative_to(REPO_DIR))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main(
        args=args, result_prefix="sms_webhooks-", run=run, summary=summary, work_prefix="helpdesk-bench-sms-"
    )


if __name__ == "__main__":
    sys.exit(main())
