"""Talking IMAP to an email channel's mailbox: its settings checked, the connection, the folder, its new messages,
and telling the server that messages are ours. Nothing here touches the database: the poll that stores what it
fetches and keeps the mailbox's cursors is ``channels_app.services.mailbox_poll``.
"""

import imaplib
import ssl
from dataclasses import dataclass, field

from django.conf import settings
from imapclient import IMAPClient
from imapclient.imapclient import SEEN, SocketTimeout

from channels_app.models import Channel

DEFAULT_BATCH_SIZE = 50


class ImapConfigError(Exception):
    """The channel's IMAP settings cannot work (missing username, password, bad combination)."""


EXPECTED_ERRORS = (ImapConfigError, OSError, imaplib.IMAP4.error)


@dataclass(frozen=True)
class ImapConfig:
    """A channel's ``imap_*`` settings and its ``imap_password`` secret, checked; the password never in a repr."""

    host: str
    port: int
    use_ssl: bool
    use_starttls: bool
    username: str
    password: str = field(repr=False)
    folder: str
    move_to: str
    batch_size: int
    timeout: float

    @classmethod
    def from_channel(cls, channel: Channel) -> "ImapConfig":
        options = channel.settings or {}
        secrets = channel.secrets or {}
        use_starttls = bool(options.get("imap_starttls", False))
        use_ssl = bool(options.get("imap_ssl", not use_starttls))
        if use_ssl and use_starttls:
            raise ImapConfigError("imap_ssl and imap_starttls are exclusive (STARTTLS upgrades a plain connection)")
        username = str(options.get("imap_username") or "")
        password = str(secrets.get("imap_password") or "")
        if not username or not password:
            raise ImapConfigError("imap_username (settings) and imap_password (secrets) are required")
        folder = str(options.get("imap_folder") or "INBOX")
        move_to = str(options.get("imap_move_to") or "")
        if move_to == folder:
            raise ImapConfigError("imap_move_to must differ from imap_folder")
        try:
            port = int(options.get("imap_port") or (993 if use_ssl else 143))
            batch_size = int(options.get("imap_batch_size") or DEFAULT_BATCH_SIZE)
        except (TypeError, ValueError) as exc:
            raise ImapConfigError("imap_port and imap_batch_size must be numbers") from exc
        if batch_size < 1:
            raise ImapConfigError("imap_batch_size must be at least 1")
        return cls(
            host=str(options["imap_host"]),
            port=port,
            use_ssl=use_ssl,
            use_starttls=use_starttls,
            username=username,
            password=password,
            folder=folder,
            move_to=move_to,
            batch_size=batch_size,
            timeout=float(settings.HELPDESK["IMAP_TIMEOUT_SECONDS"]),
        )


def imap_connect(config: ImapConfig) -> IMAPClient:
    timeout = SocketTimeout(connect=config.timeout, read=config.timeout)
    context = ssl.create_default_context()
    client = IMAPClient(
        config.host,
        port=config.port,
        ssl=config.use_ssl,
        ssl_context=context if config.use_ssl else None,
        timeout=timeout,
    )
    if config.use_starttls:
        client.starttls(context)
    return client


def imap_folder_open(client: IMAPClient, config: ImapConfig) -> int:
    """Log in and select the channel's folder (creating ``imap_move_to`` when it is missing). Returns the folder's
    UIDVALIDITY."""
    client.login(config.username, config.password)
    selected = client.select_folder(config.folder)
    if config.move_to and not client.folder_exists(config.move_to):
        client.create_folder(config.move_to)
    return int(selected[b"UIDVALIDITY"])


def imap_uids_after(client: IMAPClient, uid: int) -> list[int]:
    """The UIDs above ``uid`` in the selected folder, in order."""
    # "N:*" always matches the highest UID, even when it is below N.
    return sorted(found for found in client.search(["UID", f"{uid + 1}:*"]) if found > uid)


def imap_message_fetch(client: IMAPClient, uid: int) -> bytes | None:
    """The raw message, fetched with ``BODY.PEEK[]`` (which does not set \\Seen); None when it was expunged since
    the search."""
    raw = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]")
    return None if raw is None else bytes(raw)


def imap_messages_claim(client: IMAPClient, config: ImapConfig, uids: list[int] | str) -> None:
    """Tell the server the messages are ours: move them, or mark them \\Seen. Both are no-ops for UIDs that no
    longer exist, so a range may span messages moved or expunged meanwhile."""
    if not config.move_to:
        client.add_flags(uids, [SEEN], silent=True)
    elif client.has_capability("MOVE"):
        client.move(uids, config.move_to)
    elif client.has_capability("UIDPLUS"):
        client.copy(uids, config.move_to)
        client.delete_messages(uids, silent=True)
        client.uid_expunge(uids)
    else:
        # A plain EXPUNGE would also remove messages someone else flagged \Deleted.
        raise ImapConfigError("the server supports neither MOVE nor UIDPLUS: leave imap_move_to empty")
