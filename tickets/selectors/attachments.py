"""Reads of stored attachments, scoped like the tickets they belong to."""

from helpdesk.errors import NotFound
from tickets.models import Attachment
from tickets.selectors.tickets import ticket_visibility_q


def attachment_get_for_agent(*, user, attachment_id: int) -> Attachment:
    """The attachment, or NotFound whether it does not exist or its ticket is hidden from the agent (no
    existence leak)."""
    attachment = Attachment.objects.filter(
        ticket_visibility_q(user=user, prefix="message__ticket__"), pk=attachment_id
    ).first()
    if attachment is None:
        raise NotFound("No such attachment.")
    return attachment
