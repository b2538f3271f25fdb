"""Reading raw messages from files: one .eml file, a directory of them, an mbox file or a Maildir. Pure reading;
``channels_app.services.mailbox_import`` stores and ingests what it yields."""

import email.policy
import email.utils
import mailbox
from collections.abc import Iterator
from email.parser import BytesParser
from pathlib import Path


def raw_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(label, raw bytes)`` for every message at ``path``: a Maildir (cur/ new/ tmp/), a directory of files
    (recursively, hidden files skipped), an mbox file (first line starts with "From "), or one message file."""
    path = Path(path)
    if path.is_dir():
        if all((path / name).is_dir() for name in ("cur", "new", "tmp")):
            box = mailbox.Maildir(str(path), factory=None, create=False)
            # Maildir file names do not sort by arrival; oldest first, so replies find what they answer.
            for key in sorted(box.keys(), key=lambda key: (_maildir_date(box, key), key)):
                with box.get_file(key) as handle:
                    yield f"{path}:{key}", handle.read()
            return
        for child in sorted(path.iterdir()):
            if child.name.startswith("."):
                continue
            yield from raw_messages(child)
        return
    with path.open("rb") as handle:
        first_line = handle.readline()
    if first_line.startswith(b"From "):
        box = mailbox.mbox(str(path), factory=None, create=False)
        try:
            for index, key in enumerate(box.keys()):
                # get_bytes() leaves out the "From " separator line; ">From " escaping is the sender's.
                yield f"{path}#{index + 1}", box.get_bytes(key)
        finally:
            box.close()
        return
    yield str(path), path.read_bytes()


def _maildir_date(box: mailbox.Maildir, key: str) -> float:
    """The Date header as a timestamp, else the file's delivery time."""
    try:
        with box.get_file(key) as handle:
            headers = BytesParser(policy=email.policy.compat32).parse(handle, headersonly=True)
        return email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
    except Exception:
        return float(box.get_message(key).get_date())
