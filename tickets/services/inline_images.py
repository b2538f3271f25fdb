"""Pointing a stored message's ``cid:`` images at its stored attachments."""

from collections.abc import Iterable

from django.urls import reverse

from tickets.html import content_id_key, html_inline_images
from tickets.models import Attachment, Message


def message_inline_images_link(*, message: Message, attachments: Iterable[Attachment] | None = None) -> None:
    """Rewrite ``src="cid:..."`` in ``message.html`` to the download URL of the attachment with that Content-ID,
    once the attachments are stored (``attachments``: all of the message's, as just stored, else they are read). No
    query at all for HTML without ``cid:``."""
    if not message.html or "cid:" not in message.html.lower():
        return
    if attachments is None:
        stored = message.attachments.exclude(content_id="").values_list("pk", "content_id")
    else:
        stored = [(attachment.pk, attachment.content_id) for attachment in attachments if attachment.content_id]
    urls = {
        content_id_key(content_id): reverse("attachment-download", kwargs={"attachment_id": pk})
        for pk, content_id in stored
    }
    html = html_inline_images(message.html, urls)
    if html != message.html:
        message.html = html
        Message.objects.filter(pk=message.pk).update(html=html)
