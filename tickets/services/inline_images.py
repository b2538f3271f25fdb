"""Pointing a stored message's ``cid:`` images at its stored attachments."""

from django.urls import reverse

from tickets.html import content_id_key, html_inline_images
from tickets.models import Message


def message_inline_images_link(*, message: Message) -> None:
    """Rewrite ``src="cid:..."`` in ``message.html`` to the download URL of the attachment with that Content-ID,
    once the attachments are stored. No query at all for HTML without ``cid:``."""
    if not message.html or "cid:" not in message.html.lower():
        return
    urls = {
        content_id_key(content_id): reverse("attachment-download", kwargs={"attachment_id": pk})
        for pk, content_id in message.attachments.exclude(content_id="").values_list("pk", "content_id")
    }
    html = html_inline_images(message.html, urls)
    if html != message.html:
        message.html = html
        Message.objects.filter(pk=message.pk).update(html=html)
