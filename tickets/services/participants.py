"""Who takes part in a ticket's email conversation: the customer, other senders, and the people on To and Cc.

Participants matter for threading: a subject reference (``[#123]``) continues a ticket only when its sender is
one of them. Our own addresses (every email channel's address, its plus-addresses, the addresses mail was
delivered to) are never participants.
"""

from channels_app.threading_refs import parse_reply_token
from customers.identities import normalise_email
from tickets.models import Message, Ticket, TicketParticipant
from tickets.services.ingest_batch import ingest_batch_current, our_email_addresses, participants_flush

MAX_PARTICIPANTS_PER_MESSAGE = 50


def participants_record(*, ticket: Ticket, message: Message, sender_email: str, metadata: dict) -> None:
    """Record the sender and the To and Cc addresses of ``message`` (an email on ``ticket``). An address already
    recorded keeps the role it was first seen with; the caller's transaction holds the rows (inside a batch import,
    written with the batch's others, before anything reads participants: ``ingest_batch``)."""
    ours = _our_addresses(metadata)
    sender_role = (
        TicketParticipant.Role.CUSTOMER if message.customer_id == ticket.customer_id else TicketParticipant.Role.SENDER
    )
    candidates = [(sender_email, sender_role)]
    candidates += [(address, TicketParticipant.Role.TO) for address in metadata.get("to") or []]
    candidates += [(address, TicketParticipant.Role.CC) for address in metadata.get("cc") or []]
    rows, seen = [], set()
    for address, role in candidates[:MAX_PARTICIPANTS_PER_MESSAGE]:
        email = _normalised(address)
        if email is None or email in seen or _is_ours(email, ours):
            continue
        seen.add(email)
        rows.append(TicketParticipant(ticket=ticket, email=email, role=role, first_seen_message=message))
    batch = ingest_batch_current()
    if batch is not None:
        batch.pending_participants.extend(rows)
    elif rows:
        TicketParticipant.objects.bulk_create(rows, ignore_conflicts=True)


def participant_tickets(
    *, ticket_ids, customer_id: int, sender_email: str, tickets: dict[int, Ticket] | None = None
) -> set[int]:
    """Of ``ticket_ids``, those whose customer is ``customer_id`` or that have ``sender_email`` as a participant.
    ``tickets`` (by id) are those of ``ticket_ids`` the caller has already read: every one that exists."""
    ticket_ids = set(ticket_ids)
    if not ticket_ids:
        return set()
    if tickets is not None:
        owned = {pk for pk in ticket_ids if pk in tickets and tickets[pk].customer_id == customer_id}
    else:
        owned = set(Ticket.objects.filter(pk__in=ticket_ids, customer_id=customer_id).values_list("pk", flat=True))
    rest = ticket_ids - owned
    if rest and sender_email:
        participants_flush()
        owned |= set(
            TicketParticipant.objects.filter(ticket_id__in=rest, email=sender_email).values_list("ticket_id", flat=True)
        )
    return owned


def _normalised(address: str) -> str | None:
    try:
        return normalise_email(address or "")
    except ValueError:
        return None


def _our_addresses(metadata: dict) -> set[str]:
    """Bases (``local@domain``, plus-part removed) of every email channel's address and of the addresses the
    message was delivered to."""
    addresses = [*our_email_addresses(), *(metadata.get("recipients") or [])]
    return {_base(email) for email in map(_normalised, addresses) if email}


def _is_ours(email: str, ours: set[str]) -> bool:
    if _base(email) in ours:
        return True
    local_part = email.rpartition("@")[0]
    # A reply token names one of our tickets, whatever domain forwarded it to us.
    return "+" in local_part and parse_reply_token(local_part.split("+", 1)[1]) is not None


def _base(email: str) -> str:
    local_part, _, domain = email.rpartition("@")
    return f"{local_part.split('+', 1)[0]}@{domain}"
