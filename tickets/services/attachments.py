"""Storing attachment bytes through Django's storage, content-addressed so a file re-sent is stored once."""

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable

from django.core.files.base import ContentFile

from channels_app.types import InboundAttachment
from tickets.models import Attachment, Message

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_filename(name: str) -> str:
    """A file name safe for any storage: no path, no control characters, not empty, at most 100 characters."""
    base = os.path.basename((name or "").replace("\\", "/"))
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name).strip(" .") or "attachment"
    stem, dot, ext = cleaned.rpartition(".")
    if dot and len(ext) <= 10:
        return f"{stem[: 100 - len(ext) - 1]}.{ext}"
    return cleaned[:100]


def attachment_store(*, message: Message, filename: str, content_type: str, content: bytes, content_id: str = ""):
    attachment = _attachment_file_save(message, filename, content_type, content, content_id)
    attachment.save()
    return attachment


def attachments_store(*, message: Message, attachments: Iterable[InboundAttachment]) -> list[Attachment]:
    """``attachment_store`` for each of an inbound message's attachments: the files written, the rows in one
    insert. Returned in order, with their ids."""
    rows = [
        _attachment_file_save(message, item.filename, item.content_type, item.content, item.content_id)
        for item in attachments
    ]
    if len(rows) == 1:
        rows[0].save()
    elif rows:
        Attachment.objects.bulk_create(rows)
    return rows


def _attachment_file_save(
    message: Message, filename: str, content_type: str, content: bytes, content_id: str
) -> Attachment:
    """The attachment's file written through the storage, and its row, not saved yet."""
    digest = hashlib.sha256(content).hexdigest()
    attachment = Attachment(
        message=message,
        # The name shown to agents: never a path, whatever the sender claimed.
        filename=(os.path.basename((filename or "").replace("\\", "/")).strip() or "attachment")[:255],
        content_type=(content_type or "application/octet-stream")[:100],
        size=len(content),
        sha256=digest,
        content_id=(content_id or "")[:255],
    )
    attachment.file.save(safe_filename(filename), ContentFile(content), save=False)
    return attachment
