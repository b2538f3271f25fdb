"""Email ingest benchmark, side by side with django-helpdesk on the same mailbox and the same database kind.

Builds a mailbox of N messages with the peer's own generator (``../shared/tools/peer_helpdesk/make_corpus.py``,
new threads, replies in seven threading variants, CPython's test messages, duplicates, many charsets and
transfer encodings, attachments), ingests it through our real path,
``channels_app.services.mailbox_import.email_import``
(raw stored as an ``InboundEvent`` first, then parsed and ingested by the same services as webhooks and IMAP), on
a fresh PostgreSQL database, and scores the result against the generator's ``manifest.json``: tickets, reply
threading by variant, body probes by encoding, titles by subject charset, attachments (name and size),
duplicate deliveries, CPython messages. Then it runs the peer's ``bench.sh`` on the same corpus and the same
PostgreSQL server and prints both figures, their ratio and both correctness scores.

Only ingestion is timed: not corpus generation, Django start-up, migrations, or the rewriting of subject
tokens between waves. Usage and how to read the figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import email
import email.policy
import email.utils
import io
import json
import multiprocessing
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPO_DIR = Path(__file__).resolve().parent.parent
PEER_DIR = (REPO_DIR / ".." / "shared" / "tools" / "peer_helpdesk").resolve()
RESULTS_DIR = REPO_DIR / "benchmarks" / "results"
# Where the peer's bench.py writes its results (its default: $TMPDIR or /tmp).
PEER_RESULTS_DIR = Path(os.environ.get("PEER_RESULTS") or Path(tempfile.gettempdir()) / "peer-helpdesk-results")
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/helpdesk_bench_email"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
CHANNEL_ADDRESS = "support@peer.example"  # the peer corpus writes to this address
EXAMPLES = 8  # failing messages listed per finding


# --- Arguments -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="messages in the generated mailbox (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--source", default="mixed", choices=["mixed", "generated", "cpython"], help="corpus source")
    parser.add_argument("--corpus", type=Path, default=None, help="reuse this corpus directory (with manifest.json)")
    parser.add_argument(
        "--mode",
        choices=["phased", "bulk"],
        default="phased",
        help="phased: one wave per reply depth, subject tokens rewritten to our [#id] (default); bulk: all at once",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        help=f"PostgreSQL database to drop, create and migrate (DATABASE_URL, default {DEFAULT_DATABASE_URL}); "
        "its name must contain 'bench'",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=100,
        help="messages per commit, as `manage.py ingest_email` imports a mailbox (default 100); 1 = one "
        "email_import (one transaction) per message",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="ingest each wave in this many processes, split by sender (default 1; the peer uses one)",
    )
    parser.add_argument(
        "--parse-workers",
        type=int,
        default=1,
        help="email_import_many's parse_workers: parse each batch in this many forked processes while the "
        "previous batch is written (default 1: parse in the importing process)",
    )
    parser.add_argument("--skip-peer", action="store_true", help="reuse the last peer results JSON for this corpus")
    parser.add_argument("--no-peer", action="store_true", help="measure ours only")
    parser.add_argument("--profile", type=int, default=0, metavar="K", help="print the K top costs (cProfile)")
    parser.add_argument("--log-level", default="CRITICAL", help="LOG_LEVEL of the desk while ingesting")
    parser.add_argument(
        "--settings",
        default="helpdesk.settings",
        help="DJANGO_SETTINGS_MODULE, to measure a variant before making it (default helpdesk.settings)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.workers < 1:
        parser.error("--n and --workers must be at least 1")
    if args.profile and args.workers > 1:
        parser.error("--profile measures one process: use it with --workers 1")
    parts = urlsplit(args.database_url)
    name = parts.path.strip("/")
    if parts.scheme not in ("postgres", "postgresql") or parts.hostname not in LOOPBACK_HOSTS:
        parser.error("--database-url must be a PostgreSQL URL on this machine (127.0.0.1)")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name) or "bench" not in name:
        parser.error("the database name must be a plain lower-case identifier containing 'bench' (it is dropped)")
    return args


# --- Corpus ----------------------------------------------------------------------------------------------------


def corpus_build(args: argparse.Namespace) -> Path:
    """The mailbox directory: ``--corpus`` as given, else built by the peer's generator (deterministic per seed)."""
    if args.corpus is not None:
        if not (args.corpus / "manifest.json").is_file():
            sys.exit(f"{args.corpus} has no manifest.json")
        return args.corpus.resolve()
    out = Path(tempfile.gettempdir()) / f"email-ingest-corpus-{args.source}-{args.n}-s{args.seed}"
    command = [sys.executable, str(PEER_DIR / "make_corpus.py"), "--n", str(args.n), "--seed", str(args.seed)]
    command += ["--source", args.source, "--out", str(out)]
    subprocess.run(command, check=True, stdout=sys.stderr)
    return out


class Corpus:
    """The manifest plus what the scoring needs from the raw files (read with the standard library, not with our
    parser): each message's sender and Cc, and the decoded size of each attachment."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.meta = json.loads((directory / "manifest.json").read_text())
        self.entries: list[dict] = self.meta["messages"]
        self.slug = self.meta.get("slug", "support")
        self.raw = {entry["file"]: (directory / entry["file"]).read_bytes() for entry in self.entries}
        self.by_msgid = {}
        for entry in self.entries:
            if entry["kind"] in ("new", "reply"):
                self.by_msgid.setdefault(entry["msgid"], entry)
        self.sender: dict[str, str] = {}
        self.cc: dict[str, list[str]] = {}
        self.attachment_sizes: dict[str, list[tuple[str, int, str]]] = {}
        for entry in self.entries:
            if entry["kind"] == "cpython":
                continue
            message = email.message_from_bytes(self.raw[entry["file"]], policy=email.policy.compat32)
            self.sender[entry["file"]] = email.utils.parseaddr(str(message.get("From", "")))[1].lower()
            self.cc[entry["file"]] = [a.lower() for _, a in email.utils.getaddresses(message.get_all("Cc", []))]
            self.attachment_sizes[entry["file"]] = _attachment_parts(message)

    def sender_roles(self) -> dict[str, str]:
        """For each reply: ``starter`` (wrote the thread's first message), ``participant`` (wrote or was copied
        on an earlier message of the thread) or ``other sender``."""
        seen: dict[int, set[str]] = collections.defaultdict(set)
        starter: dict[int, str] = {}
        roles = {}
        for entry in self.entries:
            if entry["kind"] not in ("new", "reply"):
                continue
            thread, sender = entry["thread"], self.sender[entry["file"]]
            if entry["kind"] == "new":
                starter[thread] = sender
            else:
                roles[entry["file"]] = (
                    "starter"
                    if sender == starter.get(thread)
                    else "participant"
                    if sender in seen[thread]
                    else "other sender"
                )
            seen[thread].add(sender)
            seen[thread].update(self.cc[entry["file"]])
        return roles


def _attachment_parts(message) -> list[tuple[str, int, str]]:
    """(filename, decoded size, Content-ID) of each part the generator added as an attachment or inline image."""
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        cid = (part.get("Content-ID") or "").strip().strip("<>")
        name = part.get_filename()
        if name is None and not cid:
            continue
        found.append((name or "", len(part.get_payload(decode=True) or b""), cid))
    return found


# --- Our desk --------------------------------------------------------------------------------------------------


def database_recreate(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.strip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8'").format(sql.Identifier(name)))


def django_start(*, database_url: str, var_dir: Path, log_level: str, settings: str = "helpdesk.settings") -> None:
    """Set the desk up in this process against ``database_url``, with files under ``var_dir`` and Celery eager (so
    the routing each new ticket enqueues is done, and timed, here)."""
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
    sys.path.insert(0, str(REPO_DIR))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("show server_version")
        return cursor.fetchone()[0].split()[0]


class Ours:
    """Ingests the corpus through ``email_import`` and keeps every outcome."""

    def __init__(
        self, corpus: Corpus, *, profile: bool, workers: int = 1, batch_size: int = 100, parse_workers: int = 1
    ) -> None:
        from channels_app.models import Channel
        from channels_app.services.channels import channel_create

        self.corpus = corpus
        self.channel = channel_create(kind=Channel.Kind.EMAIL, name="Benchmark mailbox", address=CHANNEL_ADDRESS)
        self.outcomes: dict[str, dict] = {}
        self.seconds = 0.0
        self.cpu_seconds = 0.0  # CPU time of the importing processes (and their parsing children) while ingesting
        self.backend_cpu_seconds = 0.0  # and of their PostgreSQL backends
        self.statements = collections.Counter()  # SQL statements sent while ingesting: "all", "savepoint"
        self.wave_log: list[str] = []
        self.profiler = cProfile.Profile() if profile else None
        self.workers = workers
        self.batch_size = batch_size
        self.parse_workers = parse_workers
        self.pool = None
        if workers > 1:
            from django.db import connections

            global _WORKER_CHANNEL, _WORKER_BATCH_SIZE
            _WORKER_CHANNEL = self.channel
            _WORKER_BATCH_SIZE = batch_size
            # Forked once, before any timing, like Celery workers already running; each opens its own connection.
            connections.close_all()
            self.pool = multiprocessing.get_context("fork").Pool(workers)

    def run(self, mode: str) -> None:
        entries = self.corpus.entries
        if mode == "bulk":
            waves = [entries]
        else:
            by_phase = collections.defaultdict(list)
            for entry in entries:
                by_phase[entry.get("phase") or 0].append(entry)
            waves = [by_phase[phase] for phase in sorted(by_phase)]
        mapping: dict[int, int] = {}
        for number, wave in enumerate(waves):
            if mode == "phased" and number > 0:
                mapping = self.thread_tickets()
            raws = [(entry["file"], self._delivered(entry, mapping, rewrite=mode == "phased")) for entry in wave]
            seconds = self._ingest(raws) if self.pool is None else self._ingest_parallel(raws)
            self.seconds += seconds
            self.wave_log.append(f"wave {number}: {len(wave)} messages in {seconds:.2f} s")
        if self.pool is not None:
            self.pool.close()
            self.pool.join()

    def _delivered(self, entry: dict, mapping: dict[int, int], *, rewrite: bool) -> bytes:
        """The raw message as it would arrive: as bench.py does for the peer, the corpus token [<slug>-k] in the
        header block becomes the reference our desk puts in its subjects for the ticket it gave thread k, or is
        dropped when thread k never became a ticket (no reply could carry one)."""
        raw = self.corpus.raw[entry["file"]]
        thread = entry.get("token_thread")
        if not rewrite or thread is None:
            return raw
        head, separator, body = raw.partition(b"\n\n")
        token = f"[{self.corpus.slug}-{thread}]".encode()
        if thread in mapping:
            head = head.replace(token, f"[#{mapping[thread]}]".encode(), 1)
        else:
            head = head.replace(token + b" ", b"", 1).replace(token, b"", 1)
        return head + separator + body

    def _ingest(self, raws: list[tuple[str, bytes]]) -> float:
        from channels_app.services.mailbox_import import email_import, email_import_many

        channel = self.channel
        outcomes = self.outcomes
        profiler = self.profiler
        if profiler is not None:
            profiler.enable()
        from django.db import connection

        counter = _StatementCounter(self.statements)
        cpu, backend_cpu = _cpu_seconds(), _backend_cpu_seconds()
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            if self.batch_size > 1:
                # What `manage.py ingest_email` does with a mailbox: a commit per batch, a savepoint per message.
                try:
                    for name, outcome in email_import_many(
                        channel=channel, messages=raws, batch_size=self.batch_size, parse_workers=self.parse_workers
                    ):
                        outcomes[name] = {
                            "status": outcome.status,
                            "event_id": outcome.event_id,
                            "reason": outcome.reason,
                        }
                except Exception:  # a crash of the import itself: the batch's messages count as crashed
                    for name, raw in raws:
                        if name not in outcomes:
                            outcomes[name] = _import_one(email_import, channel, raw)
            else:
                for name, raw in raws:
                    outcomes[name] = _import_one(email_import, channel, raw)
        seconds = time.perf_counter() - started
        self.cpu_seconds += _cpu_seconds() - cpu
        self.backend_cpu_seconds += _backend_cpu_seconds() - backend_cpu
        if profiler is not None:
            profiler.disable()
        return seconds

    def _ingest_parallel(self, raws: list[tuple[str, bytes]]) -> float:
        """The wave split over the worker processes by sender, so one sender's messages keep their order (as the
        customer lock would serialise them anyway); timed from the hand-over to the last worker's answer."""
        chunks: list[list[tuple[str, bytes]]] = [[] for _ in range(self.workers)]
        for name, raw in raws:
            sender = self.corpus.sender.get(name) or name
            chunks[zlib.crc32(sender.encode()) % self.workers].append((name, raw))
        started = time.perf_counter()
        for outcomes, cpu, backend_cpu, statements in self.pool.map(_worker_ingest, chunks):
            self.outcomes.update(outcomes)
            self.cpu_seconds += cpu
            self.backend_cpu_seconds += backend_cpu
            self.statements.update(statements)
        return time.perf_counter() - started

    def thread_tickets(self) -> dict[int, int]:
        """Thread k -> the ticket of its earliest message that was stored (what bench.py computes for the peer)."""
        ticket_of = self.ticket_of_provider_id()
        result = {}
        for entry in self.corpus.entries:
            thread = entry.get("thread")
            if thread is None or thread in result or entry["kind"] == "dup":
                continue
            if entry["msgid"] in ticket_of:
                result[thread] = ticket_of[entry["msgid"]]
        return result

    def ticket_of_provider_id(self) -> dict[str, int]:
        from tickets.models import Message

        rows = (
            Message.objects.filter(channel=self.channel, direction=Message.Direction.INBOUND)
            .order_by("id")
            .values_list("provider_id", "ticket_id")
        )
        result: dict[str, int] = {}
        for provider_id, ticket_id in rows:
            result.setdefault(provider_id, ticket_id)
        return result


_WORKER_CHANNEL = None
_WORKER_BATCH_SIZE = 100


class _StatementCounter:
    """A Django execute wrapper counting the SQL statements sent (savepoints among them)."""

    def __init__(self, counts: collections.Counter) -> None:
        self.counts = counts

    def __call__(self, execute, sql, params, many, context):
        self.counts["all"] += 1
        if os.environ.get("BENCH_STATEMENT_SHAPES"):
            self.counts["shape: " + re.sub(r"%s(, %s)*|\"s\d+_x\d+\"", "?", sql)[:110]] += 1
        if sql.lstrip()[:9].upper() in ("SAVEPOINT", "RELEASE S", "ROLLBACK ") and "SAVEPOINT" in sql.upper():
            self.counts["savepoint"] += 1
        return execute(sql, params, many, context)


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the parsing processes of a batch import)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _backend_cpu_seconds() -> float:
    """CPU time so far of this process's PostgreSQL backend (0 when /proc does not show it: another machine or
    user). With the client's CPU time it says what a message costs whatever else the machine is doing."""
    from django.db import connection

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _import_one(email_import, channel, raw: bytes) -> dict:
    try:
        outcome = email_import(channel=channel, raw=raw)
    except Exception as exc:  # a crash of the import itself: counted, and the run goes on
        return {
            "status": "crashed",
            "reason": f"{type(exc).__name__}: {exc}"[:300],
            "traceback": traceback.format_exc(limit=-4),
        }
    return {"status": outcome.status, "event_id": outcome.event_id, "reason": outcome.reason}


def _worker_ingest(chunk: list[tuple[str, bytes]]) -> tuple[dict[str, dict], float, float, collections.Counter]:
    """One worker's share of a wave, imported as the single-process run imports (batches, or one by one with
    --batch-size 1); returns the outcomes, its CPU seconds, its PostgreSQL backend's, and its statements."""
    from django.db import connection

    from channels_app.services.mailbox_import import email_import, email_import_many

    statements = collections.Counter()
    cpu, backend_cpu = _cpu_seconds(), _backend_cpu_seconds()
    outcomes = {}
    with connection.execute_wrapper(_StatementCounter(statements)):
        if _WORKER_BATCH_SIZE > 1:
            try:
                for name, outcome in email_import_many(
                    channel=_WORKER_CHANNEL, messages=chunk, batch_size=_WORKER_BATCH_SIZE
                ):
                    outcomes[name] = {"status": outcome.status, "event_id": outcome.event_id, "reason": outcome.reason}
            except Exception:  # a crash of the import itself: the batch's messages count as crashed
                for name, raw in chunk:
                    if name not in outcomes:
                        outcomes[name] = _import_one(email_import, _WORKER_CHANNEL, raw)
        else:
            outcomes = {name: _import_one(email_import, _WORKER_CHANNEL, raw) for name, raw in chunk}
    return outcomes, _cpu_seconds() - cpu, _backend_cpu_seconds() - backend_cpu, statements


# --- Scoring ---------------------------------------------------------------------------------------------------


def norm(value: str) -> str:
    return " ".join((value or "").split())


# Reply variants whose only link to the thread is the [support-k] subject token (a forward keeps only it too).
SUBJECT_ONLY_VARIANTS = {"token-only", "fwd+token"}


def score(ours: Ours) -> dict:
    """Our result against the manifest, in the peer's categories (bench.py ``score``) plus where each failure is."""
    from channels_app.models import InboundEvent
    from tickets.html import html_to_text
    from tickets.models import Attachment, Message, Ticket

    corpus, outcomes = ours.corpus, ours.outcomes
    messages = {}
    copies = collections.Counter()
    for row in (
        Message.objects.filter(channel=ours.channel, direction=Message.Direction.INBOUND)
        .order_by("id")
        .values("id", "provider_id", "ticket_id", "text", "html", "metadata")
    ):
        copies[row["provider_id"]] += 1
        messages.setdefault(row["provider_id"], row)
    first_of_ticket = {}
    for row in Message.objects.order_by("id").values_list("ticket_id", "id"):
        first_of_ticket.setdefault(row[0], row[1])
    subjects = dict(Ticket.objects.values_list("id", "subject"))
    attachments = collections.defaultdict(list)
    for message_id, filename, size, content_id in Attachment.objects.values_list(
        "message_id", "filename", "size", "content_id"
    ):
        attachments[message_id].append((filename, size, content_id))
    events = collections.Counter(InboundEvent.objects.values_list("status", flat=True))
    ticket_of_thread = ours.thread_tickets()
    roles = corpus.sender_roles()
    marker_of = {
        e["msgid"]: next(p["text"] for p in e["probes"] if p["kind"] == "marker")
        for e in corpus.entries
        if e["kind"] in ("new", "reply")
    }

    threading = collections.defaultdict(collections.Counter)
    threading_by_role = collections.defaultdict(collections.Counter)
    as_rules_intend = 0
    thread_failures = []
    probes = collections.defaultdict(collections.Counter)
    probe_failures = []
    quotes = collections.Counter()
    quote_failures = []
    titles = collections.defaultdict(collections.Counter)
    title_failures = []
    kept = collections.Counter()
    attachment_failures = []
    duplicates = collections.Counter()
    cpython = collections.Counter()
    cpython_reasons = collections.Counter()
    cpython_details = []
    problems = []  # quarantined / failed / crashed generated messages
    expected_tickets = 0
    for entry in corpus.entries:
        name, kind = entry["file"], entry["kind"]
        outcome = outcomes.get(name, {"status": "not run"})
        status = outcome["status"]
        if kind in ("new", "cpython"):
            expected_tickets += 1
        if kind == "cpython":
            cpython[status] += 1
            if status != "ingested":
                reason = outcome.get("reason", "") or {
                    "duplicate": f"same Message-ID as an earlier message: {entry['msgid']}",
                    "processed": "processed without storing a message (a bounce or other notice)",
                }.get(status, "")
                cpython_reasons[f"{status}: {reason[:120]}"] += 1
                cpython_details.append(
                    {"file": name, "source": entry.get("source"), "status": status, "reason": reason}
                )
            continue
        if status in ("quarantined", "failed", "crashed"):
            problems.append({"file": name, "kind": kind, "status": status, "reason": outcome.get("reason", "")})
        if kind == "dup":
            stored = copies.get(entry["msgid"], 0)
            duplicates["stored once" if stored == 1 and status == "duplicate" else f"{status}, {stored} copies"] += 1
            continue
        row = messages.get(entry["msgid"])
        if kind == "reply":
            expected = ticket_of_thread.get(entry["thread"])
            if row is None:
                verdict = f"not stored ({status})"
            elif expected is None:
                verdict = "thread root lost"
            elif row["ticket_id"] == expected:
                verdict = "correct"
            elif first_of_ticket.get(row["ticket_id"]) == row["id"]:
                verdict = "new ticket (split)"
            else:
                verdict = "wrong ticket"
            for key in (entry["variant"], "ALL"):
                threading[key][verdict] += 1
            threading_by_role[roles.get(name, "?")][verdict] += 1
            # Our rules (tickets.services.threading): a [#id] subject reference threads only for the ticket's
            # customer and participants, so a stranger's reply carrying nothing else must open its own ticket.
            subject_only = entry["variant"] in SUBJECT_ONLY_VARIANTS and roles.get(name) == "other sender"
            if verdict == ("new ticket (split)" if subject_only else "correct"):
                as_rules_intend += 1
            if verdict != "correct":
                thread_failures.append(
                    {
                        "file": name,
                        "variant": entry["variant"],
                        "sender": roles.get(name),
                        "verdict": verdict,
                        "thread": entry["thread"],
                        "expected_ticket": expected,
                        "got_ticket": row["ticket_id"] if row else None,
                    }
                )
        if kind == "new" and row is not None:
            own = first_of_ticket.get(row["ticket_id"]) == row["id"]
            threading["new-thread"]["own ticket" if own else "merged into other ticket"] += 1
            if own:
                got = subjects.get(row["ticket_id"], "")
                ok = norm(got) == norm(entry["expected_title"])
                titles[entry["subject_cs"]]["ok" if ok else "wrong"] += 1
                if not ok:
                    title_failures.append({"file": name, "expected": entry["expected_title"], "got": got})
        if row is None:
            continue
        text = norm(row["text"])
        full = norm((row["metadata"] or {}).get("full_text", "")) or text
        html_text = norm(html_to_text(row["html"])) if row["html"] else ""
        for probe in entry["probes"]:
            wanted = norm(probe["text"])
            where = (
                "in text"
                if wanted in text
                else "only in full_text"
                if wanted in full
                else "only in html"
                if wanted in html_text
                else "missing"
            )
            probes[f"{probe['kind']}/{entry['body_enc']}"][where] += 1
            if where != "in text":
                probe_failures.append(
                    {
                        "file": name,
                        "kind": probe["kind"],
                        "enc": entry["body_enc"],
                        "structure": entry["structure"],
                        "where": where,
                        "probe": probe["text"],
                        "text_start": row["text"][:160],
                    }
                )
        parent_marker = marker_of.get(entry.get("parent", ""))
        if kind == "reply" and parent_marker and parent_marker in (full + " " + html_text):
            split = parent_marker not in text
            quotes["separated" if split else f"left in text ({entry['structure']})"] += 1
            if not split:
                quote_failures.append({"file": name, "structure": entry["structure"], "enc": entry["body_enc"]})
        stored = list(attachments.get(row["id"], []))
        expected_parts = corpus.attachment_sizes.get(name, [])
        for part_name, size, content_id in expected_parts:
            match = None
            for candidate in stored:
                same_name = candidate[0] == part_name if part_name else candidate[2] == content_id
                if same_name and candidate[1] == size:
                    match = "kept"
                elif match is None and candidate[1] == size:
                    match = "kept under another name"
            if match is None:
                match = "missing"
            kept[match] += 1
            if match != "kept":
                skipped = (row["metadata"] or {}).get("attachments_skipped", [])
                attachment_failures.append(
                    {
                        "file": name,
                        "attachment": part_name or f"cid:{content_id}",
                        "size": size,
                        "verdict": match,
                        "stored": [c[0] for c in stored],
                        "skipped": skipped,
                    }
                )
    return {
        "tickets": Ticket.objects.count(),
        "expected_tickets": expected_tickets,
        "inbound_messages": Message.objects.filter(direction=Message.Direction.INBOUND).count(),
        "followups_on_existing": sum(
            1 for row in messages.values() if first_of_ticket.get(row["ticket_id"]) != row["id"]
        ),
        "events": dict(events),
        "outcomes": dict(collections.Counter(o["status"] for o in outcomes.values())),
        "threading": {k: dict(v) for k, v in sorted(threading.items())},
        "threading_by_sender": {k: dict(v) for k, v in sorted(threading_by_role.items())},
        "replies_as_rules_intend": as_rules_intend,
        "thread_failures": thread_failures,
        "body_probes": {k: dict(v) for k, v in sorted(probes.items())},
        "probe_failures": probe_failures,
        "quotes": dict(quotes),
        "quote_failures": quote_failures,
        "titles": {k: dict(v) for k, v in sorted(titles.items())},
        "title_failures": title_failures,
        "attachments": dict(kept),
        "attachment_failures": attachment_failures,
        "duplicates": dict(duplicates),
        "cpython": dict(cpython),
        "cpython_reasons": dict(cpython_reasons),
        "cpython_details": cpython_details,
        "problems": problems,
        "crash_tracebacks": {n: o["traceback"] for n, o in outcomes.items() if "traceback" in o},
    }


# --- The peer --------------------------------------------------------------------------------------------------


def peer_db_url() -> str:
    if os.environ.get("PEER_DB_URL"):
        return os.environ["PEER_DB_URL"]
    done = subprocess.run(["bash", str(PEER_DIR / "pg_local.sh")], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def peer_run(*, n: int, corpus: Path, mode: str) -> Path:
    """``bench.sh N`` on our corpus and PostgreSQL; returns its results JSON. Its output goes to stderr."""
    env = dict(os.environ, PEER_DB_URL=peer_db_url(), CORPUS=str(corpus), MODE=mode)
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        ["bash", str(PEER_DIR / "bench.sh"), str(n)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    results = None
    for line in process.stdout:
        print(f"  [peer] {line.rstrip()}", file=sys.stderr, flush=True)
        if line.startswith("json: "):
            results = Path(line[len("json: ") :].strip())
    if process.wait() != 0 or results is None:
        sys.exit(f"the peer's bench.sh failed (exit {process.returncode})")
    return results


def peer_last(*, n: int, sha256: str, mode: str) -> Path:
    for path in sorted(PEER_RESULTS_DIR.glob("*.json"), reverse=True):
        data = json.loads(path.read_text())
        if (data.get("n"), data.get("corpus_sha256"), data.get("mode"), data.get("db")) == (
            n,
            sha256,
            mode,
            "postgresql",
        ):
            return path
    sys.exit(f"--skip-peer: no PostgreSQL {mode} peer result for this corpus in {PEER_RESULTS_DIR}; run without it")


# --- Report ----------------------------------------------------------------------------------------------------


def _counts(value: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(value.items(), key=lambda item: -item[1])) or "-"


def _ok(value: dict, *good: str) -> tuple[int, int]:
    return sum(value.get(g, 0) for g in good), sum(value.values())


def _by_encoding(probes: dict, good: str) -> dict[str, tuple[int, int]]:
    result: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for key, counts in probes.items():
        encoding = key.split("/", 1)[1]
        result[encoding][0] += counts.get(good, 0)
        result[encoding][1] += sum(counts.values())
    return {k: tuple(v) for k, v in sorted(result.items())}


def report(res: dict, peer: dict | None) -> list[str]:
    lines = []
    add = lines.append
    ours = res["score"]
    add(
        f"Email ingest benchmark: {res['n']} messages, corpus {res['corpus']} (sha256 {res['corpus_sha256'][:16]}), "
        f"mode {res['mode']}, PostgreSQL {res['postgres']}, {res['cpus']} CPUs, Python {res['python']}"
    )
    load = res["load_average"]
    peer_load = res.get("peer_load_average")
    add(
        f"  load average (1 min) before/after: ours {load['before'][0]:.2f}/{load['after'][0]:.2f}"
        + (f", peer {peer_load['before'][0]:.2f}/{peer_load['after'][0]:.2f}" if peer_load else "")
        + (f"; ours ran in {res['workers']} processes" if res["workers"] > 1 else "")
        + (
            f"; our CPU per message {res['cpu_ms_per_message']} ms in Python"
            f" + {res['postgres_cpu_ms_per_message']} ms in our PostgreSQL backend"
            if res.get("cpu_ms_per_message")
            else ""
        )
    )
    for shape, count in res.get("statement_shapes", [])[:40]:
        add(f"    {count / res['n']:5.2f} per message  {shape}")
    if res.get("statements_per_message") is not None:
        add(
            f"  SQL statements per message {res['statements_per_message']}"
            f" ({res['savepoint_statements_per_message']} of them savepoints); batch size {res.get('batch_size')},"
            f" parse workers {res.get('parse_workers')}"
        )
    width = 34
    peer_name = f"django-helpdesk {peer['versions'].get('django-helpdesk')}" if peer else "django-helpdesk"

    def row(label: str, mine: str, theirs: str = "") -> None:
        add(f"  {label:<{width}} {mine:<40} {theirs}")

    row("", "ours (email_import)", peer_name if peer else "(peer not run)")
    row(
        "ingest time",
        f"{res['seconds']:.2f} s ({len(res['waves'])} waves)",
        f"{peer['wall_s']:.2f} s ({peer['get_email_runs']} get_email runs)" if peer else "",
    )
    rate = res["messages_per_s"]
    row(
        "messages/s",
        f"{rate:.1f}",
        f"{peer['emails_per_s']:.1f} (net of start-up {peer['net_emails_per_s']:.1f})" if peer else "",
    )
    if peer:
        res["ratio"] = round(rate / peer["emails_per_s"], 2)
        res["ratio_net"] = round(rate / peer["net_emails_per_s"], 2)
        row("ratio ours/peer", f"{res['ratio']:.1f}x (vs its net rate {res['ratio_net']:.1f}x)")
    row(
        "tickets (expected)",
        f"{ours['tickets']} ({ours['expected_tickets']})",
        f"{peer['tickets']} ({peer['expected_tickets']})" if peer else "",
    )
    row(
        "follow-ups on existing tickets",
        str(ours["followups_on_existing"]),
        str(peer["followups_on_existing"]) if peer else "",
    )
    crashes = ours["outcomes"].get("failed", 0) + ours["outcomes"].get("crashed", 0)
    row("crashes (failed/crashed)", str(crashes), f"{peer['crashed']} (+{peer['skipped']} skipped)" if peer else "")
    row("quarantined with a reason", str(ours["outcomes"].get("quarantined", 0)), "-" if peer else "")
    row("outcomes", _counts(ours["outcomes"]))
    good, total = _ok(ours["threading"].get("ALL", {}), "correct")
    pgood, ptotal = _ok(peer["threading"].get("ALL", {}), "correct") if peer else (0, 0)
    row("replies threaded correctly", f"{good}/{total}", f"{pgood}/{ptotal}" if peer else "")
    variants = sorted(set(ours["threading"]) | set(peer["threading"] if peer else []))
    for variant in variants:
        if variant == "ALL":
            continue
        row(
            f"  {variant}",
            _counts(ours["threading"].get(variant, {})),
            _counts(peer["threading"].get(variant, {})) if peer else "",
        )
    for role, counts in ours["threading_by_sender"].items():
        row(f"  replies by {role}", _counts(counts))
    intended = ours["replies_as_rules_intend"]
    res["replies_as_rules_intend"] = intended
    row("replies as our rules intend", f"{intended}/{total} (strangers' subject-only replies on their own tickets)")
    probes_good = sum(v.get("in text", 0) for v in ours["body_probes"].values())
    probes_total = sum(sum(v.values()) for v in ours["body_probes"].values())
    peer_probes = (
        (
            sum(v.get("ok", 0) for v in peer["body_probes"].values()),
            sum(sum(v.values()) for v in peer["body_probes"].values()),
        )
        if peer
        else (0, 0)
    )
    row("body probes decoded", f"{probes_good}/{probes_total}", f"{peer_probes[0]}/{peer_probes[1]}" if peer else "")
    mine_enc = _by_encoding(ours["body_probes"], "in text")
    theirs_enc = _by_encoding(peer["body_probes"], "ok") if peer else {}
    for encoding in sorted(set(mine_enc) | set(theirs_enc)):
        m, t = mine_enc.get(encoding, (0, 0)), theirs_enc.get(encoding)
        row(f"  {encoding}", f"{m[0]}/{m[1]}", f"{t[0]}/{t[1]}" if t else "")
    where = collections.Counter()
    for counts in ours["body_probes"].values():
        where.update(counts)
    row("  where our probes were", _counts(where))
    row("quoted history kept out of text", _counts(ours["quotes"]))
    row(
        "titles by subject charset",
        ", ".join(f"{k} {_ok(v, 'ok')[0]}/{_ok(v, 'ok')[1]}" for k, v in ours["titles"].items()),
        ", ".join(f"{k} {_ok(v, 'ok')[0]}/{_ok(v, 'ok')[1]}" for k, v in peer["subjects"].items()) if peer else "",
    )
    kept, expected = _ok(ours["attachments"], "kept")
    row(
        "attachments kept (name and size)",
        f"{kept}/{expected}",
        f"{peer['attachments'].get('stored', 0)}/{peer['attachments'].get('expected', 0)}" if peer else "",
    )
    if expected != kept:
        row("", _counts(ours["attachments"]))
    once, dups = _ok(ours["duplicates"], "stored once")
    peer_once = peer["duplicates"].get("deduplicated", 0) if peer else 0
    row(
        "duplicate deliveries stored once",
        f"{once}/{dups}",
        f"{peer_once}/{sum(peer['duplicates'].values())}" if peer else "",
    )
    row("CPython test messages", _counts(ours["cpython"]), _counts(peer["cpython"]) if peer else "")
    for reason, count in ours["cpython_reasons"].items():
        add(f"      {count} x {reason}")
    add("")
    add("Targets (issue 3):")
    targets = [
        ("at least 10x the peer's messages/s", bool(peer) and res.get("ratio", 0) >= 10),
        # By the issue's own rules: a subject reference ([#id]) threads only for the ticket's participants, so the
        # manifest's subject-only replies from strangers rightly start tickets of their own ("as our rules intend").
        ("every reply threaded as the issue's rules say", intended == total),
        ("every attachment kept", kept == expected),
        ("every body probe decoded", probes_good == probes_total),
        ("no crash", crashes == 0),
        ("no duplicate", once == dups),
    ]
    res["targets"] = {name: met for name, met in targets}
    for name, met in targets:
        add(f"  [{'x' if met else ' '}] {name}")
    lines += findings(ours)
    return lines


def findings(ours: dict) -> list[str]:
    lines = []
    sections = [
        (
            "replies not threaded",
            ours["thread_failures"],
            lambda f: (
                f"{f['file']} {f['variant']} from {f['sender']}: {f['verdict']} "
                f"(thread ticket {f['expected_ticket']}, got {f['got_ticket']})"
            ),
        ),
        (
            "body probes not in the stored text",
            ours["probe_failures"],
            lambda f: f"{f['file']} {f['kind']}/{f['enc']}/{f['structure']}: {f['where']}: {f['probe']!r}",
        ),
        (
            "quoted history left in the text",
            ours["quote_failures"],
            lambda f: f"{f['file']} {f['structure']} {f['enc']}",
        ),
        ("titles", ours["title_failures"], lambda f: f"{f['file']} expected {f['expected']!r} got {f['got']!r}"),
        (
            "attachments",
            ours["attachment_failures"],
            lambda f: (
                f"{f['file']} {f['attachment']} ({f['size']} B): {f['verdict']}; stored {f['stored']}"
                + (f"; skipped {f['skipped']}" if f["skipped"] else "")
            ),
        ),
        (
            "CPython messages not ingested",
            ours["cpython_details"],
            lambda f: f"{f['file']} ({f['source']}): {f['status']}: {f['reason'][:160]}",
        ),
        (
            "quarantined or failed generated messages",
            ours["problems"],
            lambda f: f"{f['file']} {f['kind']}: {f['status']}: {f['reason'][:160]}",
        ),
    ]
    for title, items, fmt in sections:
        if not items:
            continue
        lines.append(f"{title}: {len(items)} (first {min(EXAMPLES, len(items))})")
        lines.extend(f"  {fmt(item)}" for item in items[:EXAMPLES])
    for name, text in list(ours["crash_tracebacks"].items())[:3]:
        lines.append(f"crash in {name}:\n{text}")
    return lines


def profile_lines(profiler: cProfile.Profile, top: int) -> list[str]:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return [line for line in out.getvalue().splitlines() if line.strip()]


# --- Main ------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    directory = corpus_build(args)
    corpus = Corpus(directory)
    database_recreate(args.database_url)
    var_dir = Path(tempfile.mkdtemp(prefix="email-ingest-bench-"))
    try:
        django_start(database_url=args.database_url, var_dir=var_dir, log_level=args.log_level, settings=args.settings)
        ours = Ours(
            corpus,
            profile=args.profile > 0,
            workers=args.workers,
            batch_size=args.batch_size,
            parse_workers=args.parse_workers,
        )
        load_before = os.getloadavg()

        def per_message(seconds: float) -> float:
            # Summed over the worker processes with --workers: what a message costs, whichever core ran it.
            return round(1000 * seconds / len(corpus.entries), 2)

        print(f"ingesting {len(corpus.entries)} messages ({args.mode}) ...", file=sys.stderr, flush=True)
        ours.run(args.mode)
        for line in ours.wave_log:
            print(f"  {line}", file=sys.stderr)
        result = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "n": len(corpus.entries),
            "mode": args.mode,
            "corpus": str(directory),
            "corpus_sha256": corpus.meta.get("sha256", ""),
            "postgres": postgres_version(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "profiled": args.profile > 0,
            "workers": args.workers,
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "cpu_ms_per_message": per_message(ours.cpu_seconds),
            "postgres_cpu_ms_per_message": per_message(ours.backend_cpu_seconds),
            "statements_per_message": round(ours.statements["all"] / len(corpus.entries), 1),
            "savepoint_statements_per_message": round(ours.statements["savepoint"] / len(corpus.entries), 1),
            "parse_workers": args.parse_workers,
            # BENCH_STATEMENT_SHAPES=1: which statements they are (the first 110 characters of each shape).
            "statement_shapes": [
                (shape[7:], count) for shape, count in ours.statements.most_common() if shape.startswith("shape: ")
            ],
            "batch_size": args.batch_size,
            "seconds": round(ours.seconds, 3),
            "messages_per_s": round(len(corpus.entries) / ours.seconds, 1),
            "waves": ours.wave_log,
            "score": score(ours),
        }
        from django.db import connections

        connections.close_all()
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    peer = None
    if not args.no_peer:
        if args.skip_peer:
            path = peer_last(n=result["n"], sha256=result["corpus_sha256"], mode=args.mode)
        else:
            print("running the peer (bench.sh) on the same corpus ...", file=sys.stderr, flush=True)
            peer_load_before = os.getloadavg()
            path = peer_run(n=result["n"], corpus=directory, mode=args.mode)
            result["peer_load_average"] = {"before": peer_load_before, "after": os.getloadavg()}
        peer = json.loads(path.read_text())
        result["peer_results"] = str(path)
        if peer.get("corpus_sha256") != result["corpus_sha256"]:
            sys.exit(f"the peer's result {path} is for another corpus")
        result["peer"] = {
            k: peer[k]
            for k in (
                "wall_s",
                "emails_per_s",
                "net_emails_per_s",
                "get_email_runs",
                "tickets",
                "followups_on_existing",
                "crashed",
                "db",
                "mode",
            )
        }
    lines = report(result, peer)
    if args.profile:
        lines += ["", "profile of the timed ingestion (slower than unprofiled):"]
        lines += profile_lines(ours.profiler, args.profile)
    if peer:
        lines.append(f"peer summary: {peer.get('date')} {result['peer_results']}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"email_ingest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
    lines.append(f"json: {out}")
    print("\n".join(lines))
    if peer:
        print(
            f"ours: {result['n']} emails in {result['seconds']:.2f} s = {result['messages_per_s']:.1f} emails/s; "
            f"peer: {peer['emails_per_s']:.1f} emails/s; ratio {result['ratio']:.1f}x "
            f"(db=postgresql mode={args.mode})"
        )
    return 0 if all(result.get("targets", {}).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
