"""``manage.py ingest_email --channel <id> PATH [PATH...]``: import .eml files, directories, mbox files and
Maildirs into an email channel, each message once (by Message-ID), with a summary at the end.

``PATH`` may be ``-``: one message on standard input, as an MTA's pipe transport delivers it (Postfix
``pipe``, Exim ``pipe``, a ``.forward`` or aliases ``|command``). For a pipe the exit status is what matters: 0
once the message is stored (even if it is then quarantined: the raw message is kept and can be retried), 75
(EX_TEMPFAIL) when it could not be stored, so the MTA keeps it in its queue and delivers it again later instead
of bouncing it.
"""

import sys
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from channels_app.models import Channel
from channels_app.providers.email.mail_files import raw_messages
from channels_app.services.mailbox_import import email_import, email_import_many

PROGRESS_EVERY = 100
STDIN = "-"
EX_TEMPFAIL = 75
KNOWN = {"ingested", "threaded", "duplicate", "quarantined", "failed"}


class Command(BaseCommand):
    help = "Import raw email (.eml files, directories, mbox files, Maildirs, or '-' for one message on stdin)."
    # Tests hand the command a byte stream in place of the process's standard input.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--channel", type=int, required=True, help="The id of an email channel.")
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument(
            "--parse-workers",
            type=int,
            default=1,
            help="Parse mailboxes in this many processes while the database work goes on (default 1: no more "
            "processes). Worth it with cores to spare: parsing is about a fifth of the work.",
        )

    def handle(self, *args, channel: int, paths: list[str], stdin=None, parse_workers: int = 1, **options):
        selected = Channel.objects.filter(pk=channel).first()
        if selected is None:
            raise CommandError(f"no channel with id {channel}")
        if selected.kind != Channel.Kind.EMAIL:
            raise CommandError(f"channel {channel} is a {selected.kind} channel, not an email channel")
        missing = [path for path in paths if path != STDIN and not Path(path).exists()]
        if missing:
            raise CommandError(f"no such file or directory: {', '.join(missing)}")
        if parse_workers < 1:
            raise CommandError("--parse-workers must be at least 1")

        counts = Counter()
        reasons = Counter()
        seen = 0
        for path in paths:
            try:
                if path == STDIN:
                    raw = (stdin or sys.stdin.buffer).read()
                    outcomes = [(STDIN, email_import(channel=selected, raw=raw))]
                else:
                    outcomes = email_import_many(
                        channel=selected, messages=raw_messages(Path(path)), parse_workers=parse_workers
                    )
                for _label, outcome in outcomes:
                    counts[outcome.status] += 1
                    if outcome.status in ("bounce", "quarantined", "failed"):
                        reasons[f"{outcome.status}: {outcome.reason}"] += 1
                    seen += 1
                    if seen % PROGRESS_EVERY == 0:
                        self.stderr.write(f"{seen} messages read")
            except DatabaseError as exc:
                # Not stored: tell an MTA to keep the message and try again, rather than bounce it. A bulk import
                # keeps what it committed; running it again takes the rest (each message once, by Message-ID).
                self.stderr.write(
                    f"could not store the message, try again later ({seen} stored before): {type(exc).__name__}: {exc}"
                )
                raise SystemExit(EX_TEMPFAIL) from exc

        self.stdout.write(
            f"{seen} messages: {counts['ingested']} ingested as new tickets, "
            f"{counts['threaded']} threaded onto existing tickets, {counts['duplicate']} duplicates, "
            f"{counts['quarantined']} quarantined, {counts['failed']} failed"
            + "".join(f", {count} {status}" for status, count in sorted(counts.items()) if status not in KNOWN)
        )
        for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
            self.stdout.write(f"  {count} {reason}")
