"""``manage.py ingest_email --channel <id> PATH [PATH...]``: import .eml files, directories, mbox files and
Maildirs into an email channel, each message once (by Message-ID), with a summary at the end."""

from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from channels_app.email.importing import email_import, raw_messages
from channels_app.models import Channel

PROGRESS_EVERY = 100


class Command(BaseCommand):
    help = "Import raw email (.eml files, directories, mbox files, Maildirs) into an email channel."

    def add_arguments(self, parser):
        parser.add_argument("--channel", type=int, required=True, help="The id of an email channel.")
        parser.add_argument("paths", nargs="+", metavar="PATH")

    def handle(self, *args, channel: int, paths: list[str], **options):
        selected = Channel.objects.filter(pk=channel).first()
        if selected is None:
            raise CommandError(f"no channel with id {channel}")
        if selected.kind != Channel.Kind.EMAIL:
            raise CommandError(f"channel {channel} is a {selected.kind} channel, not an email channel")
        missing = [path for path in paths if not Path(path).exists()]
        if missing:
            raise CommandError(f"no such file or directory: {', '.join(missing)}")

        counts = Counter()
        reasons = Counter()
        seen = 0
        for path in paths:
            for _label, raw in raw_messages(Path(path)):
                outcome = email_import(channel=selected, raw=raw)
                counts[outcome.status] += 1
                if outcome.status in ("quarantined", "failed"):
                    reasons[f"{outcome.status}: {outcome.reason}"] += 1
                seen += 1
                if seen % PROGRESS_EVERY == 0:
                    self.stderr.write(f"{seen} messages read")

        self.stdout.write(
            f"{seen} messages: {counts['ingested']} ingested as new tickets, "
            f"{counts['threaded']} threaded onto existing tickets, {counts['duplicate']} duplicates, "
            f"{counts['quarantined']} quarantined, {counts['failed']} failed"
        )
        for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
            self.stdout.write(f"  {count} {reason}")
