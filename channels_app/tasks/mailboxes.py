"""Polling the IMAP mailboxes of email channels: beat fans out one poll task per mailbox."""

from celery import shared_task

from channels_app.selectors import imap_channel_ids
from channels_app.services.mailbox_poll import imap_mailbox_poll

# A poll queued longer than this (workers down) is dropped; beat queues a fresh one meanwhile.
IMAP_POLL_EXPIRES_SECONDS = 300


@shared_task(name="channels_app.poll_imap_mailboxes", acks_late=True)
def poll_imap_mailboxes() -> int:
    ids = imap_channel_ids()
    for channel_id in ids:
        poll_imap_mailbox.apply_async((channel_id,), expires=IMAP_POLL_EXPIRES_SECONDS)
    return len(ids)


@shared_task(name="channels_app.poll_imap_mailbox", acks_late=True)
def poll_imap_mailbox(channel_id: int) -> str:
    # Failures are recorded on the mailbox's state row by the service; beat's next round is the retry.
    return imap_mailbox_poll(channel_id=channel_id).status
