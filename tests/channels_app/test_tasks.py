"""The channels' task modules: a fresh process (as the worker starts) registers every task under its old name."""

import json
import subprocess
import sys

from django.conf import settings

CHANNELS_TASKS = {
    "channels_app.process_inbound_event",
    "channels_app.deliver_message",
    "channels_app.fetch_inbound_media",
    "channels_app.requeue_stalled_inbound_events",
    "channels_app.requeue_stalled_deliveries",
    "channels_app.requeue_stalled_media",
    "channels_app.poll_imap_mailboxes",
    "channels_app.poll_imap_mailbox",
    "channels_app.prune_webhook_nonces",
}


def test_a_fresh_process_registers_every_channels_task_and_every_beat_entry():
    # A new interpreter, as a worker starts: nothing a test imported stands in for the app's own loading.
    script = (
        "import json, django; django.setup(); from helpdesk.celery import app; "
        "print(json.dumps(sorted(name for name in app.tasks if not name.startswith('celery.'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60, check=True
    )
    registered = set(json.loads(result.stdout.strip().splitlines()[-1]))

    assert registered >= CHANNELS_TASKS
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= registered
