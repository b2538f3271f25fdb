"""Server time of the agent console's pages on a large desk: queues, search and the ticket page.

Seeds N tickets (default 10,000; ``--tickets 1000000`` for the issue's million) into a PostgreSQL database of its
own with COPY: N/2 customers with an email identity each (a quarter also a phone), ~1.5 messages per ticket, five
teams, twenty agents, thirty tags, a realistic status mix (most tickets solved or closed). The secondary indexes
of migration tickets/0005 are dropped before loading and built after it, as one does for a bulk load. Then it
renders each page in-process through Django's test Client, signed in as an agent of two teams (so the visibility
rule is part of every query), and prints p50/p95 server time in ms and the SQL statement count per page. With
``--explain`` it also prints which indexes the slowest statement and the ticket list statement of each page used
(EXPLAIN ANALYZE).

Usage and how to read the figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

# Run as a script, this directory is on sys.path: what every benchmark shares is in harness.py.
from harness import (
    LOOPBACK_HOSTS,
    REPO_DIR,
    benchmark_main,
    django_setup,
    percentile,
    recreate_postgres_database_at,
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/helpdesk_bench_console"
VOCABULARY = """order invoice delivery refund account password login payment card subscription plan upgrade cancel
    shipping address tracking package arrived damaged missing item replacement warranty support thanks please hello
    could you help me with my the a an and or but since yesterday today last week still not working error message screen
    app website checkout coupon discount price charged twice bank statement receipt"""
WORDS = tuple(VOCABULARY.split())
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Lee")
# Share of tickets per status: most of a desk's history is solved or closed.
STATUS_MIX = (("new", 0.04), ("open", 0.08), ("pending", 0.05), ("on_hold", 0.02), ("solved", 0.31), ("closed", 0.5))
PRIORITY_MIX = (("low", 0.2), ("normal", 0.6), ("high", 0.15), ("urgent", 0.05))
COPY_CHUNK = 50_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000, help="tickets to seed (default 10000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed renders per page (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help=f"PostgreSQL database to drop, create, migrate and seed; its name must contain 'bench' "
        f"(default {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database if it already holds --tickets tickets (no reseed)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest and list statements"
    )
    parser.add_argument("--keep-logs", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tickets < 100 or args.repeat < 1:
        parser.error("--tickets must be at least 100 and --repeat at least 1")
    parts = urlsplit(args.database_url)
    if parts.hostname not in LOOPBACK_HOSTS:
        parser.error("--database-url must point to this machine (127.0.0.1)")
    if "bench" not in parts.path:
        parser.error("--database-url must name a database whose name contains 'bench' (it is dropped)")
    return args


# --- Database and Django -----------------------------------------------------------------------------------------


def ticket_count(url: str) -> int | None:
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            return connection.execute("SELECT count(*) FROM tickets_ticket").fetchone()[0]
    except psycopg.Error:
        return None


def django_start(*, database_url: str, var_dir: Path) -> None:
    django_setup(database_url=database_url, var_dir=var_dir, log_level="ERROR")
    from django.conf import settings

    # Pages render {% static %} without a collectstatic manifest: plain URLs, as in development.
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    settings.STORAGES = {**settings.STORAGES, "staticfiles": plain}


def search_indexes() -> dict[str, str]:
    return importlib.import_module("tickets.migrations.0005_queue_search").INDEXES


# --- Seeding -----------------------------------------------------------------------------------------------------


def _pick(mix, rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for value, share in mix:
        total += share
        if roll < total:
            return value
    return mix[-1][0]


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def seed(*, n: int, rng: random.Random) -> dict:
    """Creates the desk's people and settings through the ORM, then COPYs the bulk rows. Returns what the timed
    pages need (the agent, a few known values to search for, a ticket id)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from agents.models import AgentProfile, Team
    from channels_app.models import Channel
    from tickets.models import Tag

    started = time.perf_counter()
    teams = [Team.objects.create(name=name) for name in ("Billing", "Shipping", "Technical", "Accounts", "Returns")]
    user_model = get_user_model()
    agents = []
    for index in range(20):
        user = user_model.objects.create_user(username=f"agent{index}")
        profile = AgentProfile.objects.create(user=user, display_name=f"Agent {index}")
        profile.teams.set([teams[index % 5], teams[(index + 1) % 5]])
        agents.append(user)
    tags = [Tag.objects.create(name=f"tag-{index}") for index in range(30)]
    channels = [
        Channel.objects.create(kind=kind, name=f"Bench {kind}", address=address)
        for kind, address in (
            (Channel.Kind.EMAIL, "support@bench.example"),
            (Channel.Kind.SMS, "+15550000000"),
            (Channel.Kind.CHAT, "bench.example"),
            (Channel.Kind.API, ""),
        )
    ]
    with connection.cursor() as cursor:
        for name in search_indexes():
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
    raw = connection.connection  # the psycopg connection under Django's, for COPY
    now = datetime.now(UTC)
    customers_n = max(1, n // 2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(max(id), 0) FROM customers_customer")
        first_customer = cursor.fetchone()[0] + 1

    def copy(table: str, columns: tuple[str, ...], rows) -> None:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(statement) as writer:
            for row in rows:
                writer.write_row(row)

    def customers():
        for index in range(customers_n):
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {index}"
            yield (first_customer + index, uuid.uuid4(), name, "", "", "", "", "{}", now, now)

    copy(
        "customers_customer",
        ("id", "public_id", "name", "locale", "time_zone", "company", "plan", "attributes", "created_at", "updated_at"),
        customers(),
    )

    def identities():
        for index in range(customers_n):
            customer_id = first_customer + index
            yield (customer_id, "email", f"customer{index}@mail{index % 97}.example", True, True, now)
            if index % 4 == 0:
                yield (customer_id, "phone", f"+1415{index:07d}", True, False, now)

    copy(
        "customers_customeridentity",
        ("customer_id", "kind", "value", "is_verified", "is_primary", "created_at"),
        identities(),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(max(id), 0) FROM tickets_ticket")
        first_ticket = cursor.fetchone()[0] + 1
    span = timedelta(days=365).total_seconds()
    plans = []  # (ticket id, customer id, channel, created, last message, status)
    for index in range(n):
        status = _pick(STATUS_MIX, rng)
        # Newer tickets are more often active: activity is drawn from the last year, active ones from the last week.
        seconds_ago = rng.random() * (span if status in ("solved", "closed") else 7 * 86400)
        last = now - timedelta(seconds=seconds_ago)
        created = last - timedelta(seconds=rng.random() * 86400)
        plans.append(
            (
                first_ticket + index,
                first_customer + rng.randrange(customers_n),
                channels[index % 3],
                created,
                last,
                status,
            )
        )

    def tickets():
        for ticket_id, customer_id, channel, created, last, status in plans:
            active = status not in ("solved", "closed")
            assignee = rng.choice(agents).pk if (not active or rng.random() < 0.7) else None
            team = rng.choice(teams).pk if rng.random() < 0.85 else None
            answered = rng.random() < 0.6
            customer_last = last if not answered else last - timedelta(minutes=rng.randint(5, 600))
            yield (
                ticket_id,
                customer_id,
                f"{_words(rng, 3, 8)} #{ticket_id}",
                status,
                _pick(PRIORITY_MIX, rng),
                team,
                assignee,
                channel.pk,
                1,
                created,
                last,
                created + timedelta(minutes=30) if answered else None,
                last if status in ("solved", "closed") else None,
                last,
                customer_last,
            )

    copy(
        "tickets_ticket",
        (
            "id",
            "customer_id",
            "subject",
            "status",
            "priority",
            "team_id",
            "assignee_id",
            "channel_id",
            "version",
            "created_at",
            "updated_at",
            "first_response_at",
            "solved_at",
            "last_message_at",
            "last_customer_message_at",
        ),
        tickets(),
    )

    def messages():
        for ticket_id, customer_id, channel, created, last, _status in plans:
            yield (ticket_id, customer_id, channel.pk, "inbound", "", _words(rng, 15, 40), "", "", "", "{}", created)
            if rng.random() < 0.5:
                yield (ticket_id, customer_id, channel.pk, "outbound", "", _words(rng, 10, 30), "", "", "", "{}", last)

    copy(
        "tickets_message",
        (
            "ticket_id",
            "customer_id",
            "channel_id",
            "direction",
            "subject",
            "text",
            "html",
            "provider_id",
            "idempotency_key",
            "metadata",
            "created_at",
        ),
        messages(),
    )

    def ticket_tags():
        for ticket_id, *_ in plans:
            if rng.random() < 0.3:
                for tag in rng.sample(tags, rng.randint(1, 2)):
                    yield (ticket_id, tag.pk)

    copy("tickets_ticket_tags", ("ticket_id", "tag_id"), ticket_tags())
    loaded = time.perf_counter()
    with connection.cursor() as cursor:
        for table in ("customers_customer", "customers_customeridentity", "tickets_ticket", "tickets_message"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
            )
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in search_indexes().items():
            cursor.execute(f"CREATE INDEX {name} {definition}")
        cursor.execute("ANALYZE")
    return {
        "seconds_loading": round(loaded - started, 1),
        "seconds_indexing": round(time.perf_counter() - loaded, 1),
    }


# --- Timing ------------------------------------------------------------------------------------------------------


def pages_to_time(agent, n: int) -> list[tuple[str, str]]:
    """(label, URL). Search terms: a common word, a customer's email, a customer's name, a rare subject word."""
    from tickets.models import Ticket

    sample = (
        Ticket.objects.filter(status="open", team__isnull=True, merged_into__isnull=True)
        .select_related("customer")
        .order_by("-id")
        .first()
    )
    email = sample.customer.identities.filter(kind="email").values_list("value", flat=True).first()
    name = sample.customer.name.rsplit(" ", 1)[0]
    return [
        ("queue mine", "/console/queues/mine/"),
        ("queue unassigned", "/console/queues/unassigned/"),
        ("queue open", "/console/queues/open/"),
        ("queue teams", "/console/queues/teams/"),
        ("queue pending", "/console/queues/pending/"),
        ("queue sla-at-risk", "/console/queues/sla-at-risk/"),
        ("queue open, 2 filters", "/console/queues/open/?priority=high&channel=email"),
        ("queue open, tag", "/console/queues/open/?tag=tag-7"),
        ("queue all, status solved", "/console/queues/all/?status=solved"),
        ("queue open, page 2", "NEXT:/console/queues/open/"),
        ("search open: common word", "/console/queues/open/?q=refund"),
        ("search all: customer email", f"/console/queues/all/?q={email}"),
        ("search all: customer name", f"/console/queues/all/?q={name.replace(' ', '+')}"),
        ("search all: two words", "/console/queues/all/?q=damaged+replacement"),
        ("search all: ticket number", f"/console/queues/all/?q=%23{sample.pk}"),
        ("htmx refresh open", "HX:/console/queues/open/"),
        ("ticket page", f"TICKET:{sample.pk}"),
    ]


def time_pages(*, agent, n: int, repeat: int, explain: bool) -> list[dict]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import NoReverseMatch, reverse

    client = Client()
    client.force_login(agent)
    results = []
    for label, target in pages_to_time(agent, n):
        headers = {}
        if target.startswith("NEXT:"):
            first = client.get(target[5:]).content.decode()
            match = re.search(r'rel="next" href="([^"]+)"', first)
            url = match.group(1).replace("&amp;", "&") if match else target[5:]
        elif target.startswith("HX:"):
            url, headers = target[3:], {"HTTP_HX_REQUEST": "true"}
        elif target.startswith("TICKET:"):
            try:
                url = reverse("console:ticket", args=[int(target[7:])])
            except NoReverseMatch:
                print(f"  {label}: skipped, no console:ticket route yet (the ticket page has not landed)")
                results.append({"page": label, "skipped": "no console:ticket route"})
                continue
        else:
            url = target
        response = client.get(url, **headers)
        if response.status_code != 200:
            print(f"  {label}: skipped, {url} answered {response.status_code}")
            results.append({"page": label, "url": url, "skipped": f"status {response.status_code}"})
            continue
        client.get(url, **headers)  # warm the caches once more
        timings, cpu = [], []
        with CaptureQueriesContext(connection) as captured:
            for _ in range(repeat):
                started, cpu_started = time.perf_counter(), time.process_time()
                client.get(url, **headers)
                timings.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - cpu_started) * 1000)
        statements = len(captured.captured_queries) // repeat
        rows = len(re.findall(r"data-ticket-row", response.content.decode()))
        timings.sort()
        entry = {
            "page": label,
            "url": url,
            "p50_ms": round(percentile(timings, 50), 1),
            "p95_ms": round(percentile(timings, 95), 1),
            "python_cpu_p50_ms": round(percentile(sorted(cpu), 50), 1),
            "sql_ms_per_render": round(sum(float(q["time"]) for q in captured.captured_queries) * 1000 / repeat, 1),
            "statements": statements,
            "rows": rows,
        }
        if explain:
            one_render = captured.captured_queries[:statements]
            entry["slowest_statement"] = explain_statement(max(one_render, key=lambda query: float(query["time"])))
            listing = [query for query in one_render if 'AS "activity"' in query["sql"]]
            if listing:
                entry["list_statement"] = explain_statement(listing[0])
        results.append(entry)
        print(
            f"  {label:<27} p50 {entry['p50_ms']:>7.1f}  p95 {entry['p95_ms']:>7.1f} ms"
            f"  (Python CPU {entry['python_cpu_p50_ms']:>5.1f}, SQL {entry['sql_ms_per_render']:>6.1f} ms)"
            f"  {statements:>2} SQL  {rows:>2} rows",
            flush=True,
        )
        if explain:
            for name in ("slowest_statement", "list_statement"):
                if name in entry:
                    plan = entry[name]
                    print(
                        f"      {name.split('_')[0]:<7} SQL {plan['ms']:>6} ms, "
                        f"indexes: {', '.join(plan['indexes']) or '-'}"
                        f"{'  SEQ SCAN: ' + ', '.join(plan['seq_scans']) if plan['seq_scans'] else ''}"
                    )
    return results


def explain_statement(slowest: dict) -> dict:
    """EXPLAIN ANALYZE of one captured statement: its time in the timed run, its indexes and sequential scans."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return {
        "ms": round(float(slowest["time"]) * 1000, 1),
        "indexes": sorted(set(re.findall(r"Index (?:Only )?Scan (?:Backward )?(?:using|on) (\w+)", plan))),
        "seq_scans": sorted(set(re.findall(r"Seq Scan on (\w+)", plan))),
        "plan": plan,
        "sql": slowest["sql"][:2000],
    }


# --- Run ---------------------------------------------------------------------------------------------------------


def run(args, *, work_dir: Path, processes) -> dict:
    count = ticket_count(args.database_url) if args.reuse else None
    reseed = count != args.tickets
    if reseed:
        recreate_postgres_database_at(args.database_url)
    django_start(database_url=args.database_url, var_dir=work_dir / "var")
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    seeding = {}
    if reseed:
        print(f"migrating and seeding {args.tickets} tickets ...", file=sys.stderr, flush=True)
        call_command("migrate", verbosity=0, interactive=False)
        started = time.perf_counter()
        seeding = seed(n=args.tickets, rng=random.Random(args.seed))
        seeding["seconds_total"] = round(time.perf_counter() - started, 1)
        print(f"seeded in {seeding['seconds_total']} s ({seeding})", file=sys.stderr, flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tickets_ticket")
        tickets = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tickets_message")
        messages = cursor.fetchone()[0]
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    agent = get_user_model().objects.get(username="agent0")
    if seeding:
        print(
            f"seeded in {seeding['seconds_total']} s: COPY {seeding['seconds_loading']} s, "
            f"indexes {seeding['seconds_indexing']} s",
            flush=True,
        )
    print(
        f"console pages on PostgreSQL {postgres}: {tickets} tickets, {messages} messages, database {size}; "
        f"agent of 2 of 5 teams; {args.repeat} renders per page; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs",
        flush=True,
    )
    pages = time_pages(agent=agent, n=tickets, repeat=args.repeat, explain=args.explain)
    return {
        "ok": all("skipped" in page or page["rows"] >= 0 for page in pages),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "tickets": tickets,
        "messages": messages,
        "database_size": size,
        "postgres": postgres,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "seeding": seeding,
        "pages": pages,
    }


def summary(result: dict, *, results_path: Path) -> str:
    seeding = result["seeding"]
    lines = []
    if seeding:
        lines.append(
            f"  seeded               {result['tickets']} tickets in {seeding['seconds_total']} s "
            f"(COPY {seeding['seconds_loading']} s, indexes {seeding['seconds_indexing']} s)"
        )
    lines.append(f"  results              {results_path.relative_to(REPO_DIR)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main(
        args=args,
        result_prefix=f"console_pages-{args.tickets}-",
        run=run,
        summary=summary,
        work_prefix="helpdesk-console-bench-",
    )


if __name__ == "__main__":
    sys.exit(main())
