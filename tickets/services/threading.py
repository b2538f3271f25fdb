"""Which existing ticket an inbound message continues, by the threading rules of the email channel, in order:

1. ``In-Reply-To``/``References`` (newest first) against every Message-ID we stored or sent: our own signed ids
   (recognised by their signature, without looking the string up), the ids a provider substituted for ours
   (``MessageAlias``), and the provider ids of messages stored on the same channel (the unique index on
   channel and provider id answers that);
2. a reply token in a plus-address (``support+<token>@``) on To, Cc or a delivery header;
3. a ticket reference in the subject (``[#123]``).

Who may continue a ticket this way:

- A value only we gave out (our signed Message-ID, the id a provider put on our message instead, a signed reply
  token) is a capability: whoever holds it received our mail or was handed it by someone who did (a colleague it was
  forwarded to). It threads whoever sends it; a sender who is neither the ticket's customer nor a participant is
  noted on the message (``sender_is_participant: false``) and becomes a participant. Nothing is sent to them: replies
  go to the ticket's customer.
- The Message-ID of an email stored on this channel threads whoever quotes it, as the issue's first rule says:
  only those who received that email know it (a colleague in Cc, a list it went to), and they become participants.
- A value anyone can guess (a ticket number in a subject) threads only for the ticket's customer and its
  participants. From anyone else it is ignored and the message starts its own ticket, so a stranger cannot write
  into someone else's ticket by typing a number; an ignored subject reference is noted on the message.
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import F

from channels_app.adapters.registry import capabilities_for
from channels_app.models import Channel
from channels_app.threading_refs import parse_our_message_id, parse_reply_token
from channels_app.types import InboundMessage
from tickets.models import Message, MessageAlias, Ticket
from tickets.services.ingest_batch import message_aliases_may_exist
from tickets.services.participants import participant_tickets

# A bare provider id (no "@", as Amazon SES reports it) is matched against the local part of a quoted Message-ID;
# shorter ones could be guessed or collide, so they are not trusted that way.
MIN_BARE_ALIAS_CHARS = 16
# "[#123]" as the email provider writes it in a subject; clients and people add spaces.
_SUBJECT_REFERENCE = re.compile(r"\[\s*#\s*([1-9][0-9]{0,17})\s*\]")


class Rule:
    IN_REPLY_TO = "in_reply_to"
    PLUS_ADDRESS = "plus_address"
    SUBJECT_REFERENCE = "subject_reference"


@dataclass(frozen=True)
class ThreadMatch:
    ticket_id: int
    rule: str
    sender_is_participant: bool


@dataclass(frozen=True)
class ThreadSearch:
    match: ThreadMatch | None
    # What the message should say about references that were not followed.
    notes: dict = field(default_factory=dict)
    # The candidate tickets as read while searching (by id), so the caller need not read the match again.
    tickets: dict = field(default_factory=dict)


def thread_find(*, channel: Channel, inbound: InboundMessage, customer_id: int, sender_email: str) -> ThreadSearch:
    """The ticket ``inbound`` (arrived on ``channel``) continues by the rules above, or none. ``customer_id`` and
    ``sender_email`` (normalised, "" when the sender is not an email identity) are the sender's; plus-addresses and
    subject references are read only where the channel's adapter declares ``capabilities.addressed_references``
    (email)."""
    is_addressed = capabilities_for(channel).addressed_references
    tickets: dict[int, Ticket] = {}
    candidates = _by_references(inbound.in_reply_to, channel=channel, tickets=tickets)
    if is_addressed:
        candidates += _by_reply_token(inbound.metadata)
    subject_ids = _subject_references(inbound.subject) if is_addressed else []
    ticket_ids = {ticket_id for ticket_id, _, _ in candidates} | set(subject_ids)
    if ticket_ids - tickets.keys():
        tickets.update(Ticket.objects.in_bulk(ticket_ids - tickets.keys()))
    participating = participant_tickets(
        ticket_ids=ticket_ids, customer_id=customer_id, sender_email=sender_email, tickets=tickets
    )
    # The sender's own conversations first: when the quoted ids lead to several tickets (a reply to a message that
    # someone else's mail split off onto its own ticket), the one the sender takes part in wins; then any ticket a
    # capability leads to, in the order.
    for ticket_id, rule, _ in candidates:
        if ticket_id in participating:
            return ThreadSearch(ThreadMatch(ticket_id, rule, True), tickets=tickets)
    for ticket_id, rule, is_capability in candidates:
        if is_capability:
            return ThreadSearch(ThreadMatch(ticket_id, rule, False), tickets=tickets)
    for ticket_id in subject_ids:
        if ticket_id in participating:
            return ThreadSearch(ThreadMatch(ticket_id, Rule.SUBJECT_REFERENCE, True), tickets=tickets)
    if subject_ids:
        return ThreadSearch(None, {"ignored_subject_reference": subject_ids})
    return ThreadSearch(None)


def _by_references(ids: tuple[str, ...], *, channel: Channel, tickets: dict) -> list[tuple[int, str, bool]]:
    """``(ticket id, rule, is capability)`` for each quoted id we know, newest first. An id of ours counts before a
    stored id of the same position; an alias or stored id that names several tickets is not a capability. The
    tickets of stored ids are read in the same query and added to ``tickets`` (by id)."""
    if not ids:
        return []
    signed = {value: pk for value in ids if (pk := parse_our_message_id(value)) is not None}
    sent = dict(Message.objects.filter(pk__in=set(signed.values())).values_list("pk", "ticket_id")) if signed else {}
    local_parts = {value: _local_part(value) for value in ids}
    alias_values = set(ids) | {part for part in local_parts.values() if len(part) >= MIN_BARE_ALIAS_CHARS}
    aliases = defaultdict(set)
    aliased = (
        MessageAlias.objects.filter(value__in=alias_values).values_list("value", "message__ticket_id")
        if message_aliases_may_exist()
        else ()
    )
    for value, ticket_id in aliased:
        aliases[value].add(ticket_id)
    stored = defaultdict(set)
    for ticket in Ticket.objects.filter(messages__channel=channel, messages__provider_id__in=ids).annotate(
        quoted_id=F("messages__provider_id")
    ):
        stored[ticket.quoted_id].add(ticket.pk)
        tickets[ticket.pk] = ticket

    found = []
    for value in ids:
        if value in signed and signed[value] in sent:
            found.append((sent[signed[value]], Rule.IN_REPLY_TO, True))
        alias_tickets = aliases.get(value) or aliases.get(local_parts[value]) or set()
        if len(alias_tickets) == 1:
            found.append((next(iter(alias_tickets)), Rule.IN_REPLY_TO, True))
        # A Message-ID stored on this channel names one message, and only those who received that mail know it
        # (the customer's colleagues in Cc, a list it went to): the first rule threads them, as
        # participants. An alias a backend gave several messages proves nothing: those thread only for participants.
        stored_tickets = sorted(stored.get(value, set()), reverse=True)
        found.extend((ticket_id, Rule.IN_REPLY_TO, True) for ticket_id in stored_tickets)
        if len(alias_tickets) > 1:
            found.extend((ticket_id, Rule.IN_REPLY_TO, False) for ticket_id in sorted(alias_tickets, reverse=True))
    return found


def _by_reply_token(metadata: dict) -> list[tuple[int, str, bool]]:
    addresses = [*(metadata.get("to") or []), *(metadata.get("cc") or []), *(metadata.get("recipients") or [])]
    ticket_ids = []
    for address in addresses:
        local_part = str(address).rpartition("@")[0]
        if "+" in local_part:
            ticket_id = parse_reply_token(local_part.split("+", 1)[1])
            if ticket_id is not None and ticket_id not in ticket_ids:
                ticket_ids.append(ticket_id)
    if not ticket_ids:
        return []
    existing = set(Ticket.objects.filter(pk__in=ticket_ids).values_list("pk", flat=True))
    return [(ticket_id, Rule.PLUS_ADDRESS, True) for ticket_id in ticket_ids if ticket_id in existing]


def _subject_references(subject: str) -> list[int]:
    result = []
    for value in _SUBJECT_REFERENCE.findall(subject or ""):
        if int(value) not in result:
            result.append(int(value))
    return result[:5]


def _local_part(message_id: str) -> str:
    return message_id.strip().strip("<>").rpartition("@")[0]
