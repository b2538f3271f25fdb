"""Polling an email channel's IMAP folder: each message stored raw here once, then marked or moved there (the
IMAP conversation itself is ``channels_app.providers.email.imap``).

Per message, in this order: fetch it with ``BODY.PEEK[]`` (fetching does not set \\Seen), store the raw bytes
and advance ``last_uid`` in one transaction, and only after that commit mark it \\Seen (or move it to
``imap_move_to``) on the server and advance ``last_marked_uid``. A crash or a dropped connection at any point
leaves a state the next poll continues from: not committed -> fetched again; committed but not marked -> marked at
the start of the next poll, not fetched again. Parsing happens later, in ``process_inbound_event``, as for a
webhook delivery.

When UIDVALIDITY changes (folder recreated, mailbox migrated) the stored UIDs mean nothing any more: the folder is
read again from UID 1, and the unique Message-ID of ``InboundEvent`` turns the messages already here into no-ops
(they are still marked or moved, being ours).

One poll per mailbox at a time: a lease on the state row, taken and renewed by conditional updates. A
``select_for_update`` lock would have to hold one transaction open across the whole poll, which would stop each
message from being committed before it is marked.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from channels_app.models import Channel, ImapMailboxState
from channels_app.providers.email.imap import (
    EXPECTED_ERRORS,
    ImapConfig,
    ImapConfigError,
    imap_connect,
    imap_folder_open,
    imap_message_fetch,
    imap_messages_claim,
    imap_uids_after,
)
from channels_app.providers.email.parsing import message_provider_id
from channels_app.services import inbound_receive

logger = logging.getLogger(__name__)

# A lease outlives this many socket timeouts; a poll renews it before each message.
LEASE_TIMEOUTS = 5


class LeaseLost(Exception):
    """Another poll took this mailbox over (our lease ran out): stop without touching its cursor."""


@dataclass(frozen=True)
class PollResult:
    """``status``: ok, busy (another poll holds the mailbox), failed (recorded on the state row), skipped
    (not an active email channel with an IMAP host). ``stored``: new events; ``duplicates``: messages already here."""

    status: str
    stored: int = 0
    duplicates: int = 0
    error: str = ""


def imap_mailbox_poll(*, channel_id: int) -> PollResult:
    """Fetch up to ``imap_batch_size`` new messages of the channel's folder into InboundEvents.

    Must not run inside a transaction: each message is committed before the server is told it is ours. Any
    failure (unreachable, login refused, connection dropped, database error) is recorded on the channel's
    ``ImapMailboxState`` and logged, and the poll returns ``failed`` instead of raising, so a fan-out goes on.
    """
    if connection.in_atomic_block:
        raise RuntimeError("imap_mailbox_poll commits per message; call it outside a transaction")
    channel = Channel.objects.filter(pk=channel_id, kind=Channel.Kind.EMAIL, is_active=True).first()
    if channel is None or not (channel.settings or {}).get("imap_host"):
        return PollResult("skipped")
    state, _ = ImapMailboxState.objects.get_or_create(
        channel=channel, defaults={"folder": (channel.settings or {}).get("imap_folder") or "INBOX"}
    )
    try:
        config = ImapConfig.from_channel(channel)
    except ImapConfigError as exc:
        return _record_failure(state, exc)
    token = _lease_acquire(state_id=state.pk, seconds=config.timeout * LEASE_TIMEOUTS)
    if token is None:
        logger.info("channels_app.imap_poll_busy", extra={"channel_id": channel.pk})
        return PollResult("busy")
    counts = {"stored": 0, "duplicates": 0}
    try:
        _poll(channel=channel, config=config, state_id=state.pk, token=token, counts=counts)
    except Exception as exc:
        # Whatever broke (network, server, database), the committed cursors say where the next poll resumes.
        return _record_failure(state, exc, **counts)
    finally:
        ImapMailboxState.objects.filter(pk=state.pk, lease_token=token).update(lease_token=None, leased_until=None)
    now = timezone.now()
    ImapMailboxState.objects.filter(pk=state.pk).update(last_polled_at=now, last_success_at=now, consecutive_failures=0)
    logger.info("channels_app.imap_polled", extra={"channel_id": channel.pk, **counts})
    return PollResult("ok", **counts)


def _poll(*, channel: Channel, config: ImapConfig, state_id: int, token: uuid.UUID, counts: dict) -> None:
    with imap_connect(config) as client:
        uidvalidity = imap_folder_open(client, config)
        state = _state_align(state_id=state_id, folder=config.folder, uidvalidity=uidvalidity)
        if state.last_marked_uid < state.last_uid:
            # Stored by an earlier poll that lost the connection before telling the server.
            imap_messages_claim(client, config, f"{state.last_marked_uid + 1}:{state.last_uid}")
            ImapMailboxState.objects.filter(pk=state_id).update(last_marked_uid=state.last_uid)
        for uid in imap_uids_after(client, state.last_uid)[: config.batch_size]:
            _lease_renew(state_id=state_id, token=token, seconds=config.timeout * LEASE_TIMEOUTS)
            raw = imap_message_fetch(client, uid)
            created = None
            with transaction.atomic():
                if raw is not None:  # None: expunged since the search; UIDs are never reused, so move past it
                    _, created = inbound_receive.inbound_event_receive(
                        channel=channel,
                        provider_id=message_provider_id(raw),
                        raw=raw,
                        content_type="message/rfc822",
                        enqueue=True,
                    )
                if not ImapMailboxState.objects.filter(pk=state_id, lease_token=token).update(last_uid=uid):
                    raise LeaseLost(f"lease on mailbox state {state_id} lost")
            if created is not None:
                counts["stored" if created else "duplicates"] += 1
                imap_messages_claim(client, config, [uid])
            ImapMailboxState.objects.filter(pk=state_id).update(last_marked_uid=uid)


def _state_align(*, state_id: int, folder: str, uidvalidity: int) -> ImapMailboxState:
    """The state row, with its cursors reset when the folder or its UIDVALIDITY is not what they refer to."""
    state = ImapMailboxState.objects.get(pk=state_id)
    if state.folder == folder and state.uidvalidity == uidvalidity:
        return state
    if state.uidvalidity is not None:
        logger.warning(
            "channels_app.imap_uidvalidity_changed",
            extra={"channel_id": state.channel_id, "old": state.uidvalidity, "new": uidvalidity},
        )
    state.folder, state.uidvalidity, state.last_uid, state.last_marked_uid = folder, uidvalidity, 0, 0
    state.save(update_fields=["folder", "uidvalidity", "last_uid", "last_marked_uid", "updated_at"])
    return state


def _lease_acquire(*, state_id: int, seconds: float) -> uuid.UUID | None:
    token = uuid.uuid4()
    now = timezone.now()
    taken = (
        ImapMailboxState.objects.filter(pk=state_id)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(lease_token=token, leased_until=now + timedelta(seconds=seconds))
    )
    return token if taken else None


def _lease_renew(*, state_id: int, token: uuid.UUID, seconds: float) -> None:
    until = timezone.now() + timedelta(seconds=seconds)
    if not ImapMailboxState.objects.filter(pk=state_id, lease_token=token).update(leased_until=until):
        raise LeaseLost(f"lease on mailbox state {state_id} lost")


def _record_failure(state: ImapMailboxState, exc: Exception, *, stored: int = 0, duplicates: int = 0) -> PollResult:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    now = timezone.now()
    ImapMailboxState.objects.filter(pk=state.pk).update(
        last_error=error, last_error_at=now, last_polled_at=now, consecutive_failures=F("consecutive_failures") + 1
    )
    logger.warning(
        "channels_app.imap_poll_failed",
        extra={"channel_id": state.channel_id, "error_type": type(exc).__name__},
        # A traceback only for the unexpected; refused logins and dropped connections say enough by their type.
        exc_info=not isinstance(exc, EXPECTED_ERRORS),
    )
    return PollResult("failed", stored=stored, duplicates=duplicates, error=error)
