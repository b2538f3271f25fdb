"""The one interface between the core and every channel provider.

An adapter translates a provider's payloads into ``InboundMessage`` and sends ``OutboundMessage``; it never
writes to the database. The core finds adapters through ``channels_app.adapters.registry``.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from django.http import HttpRequest

from channels_app.models import Channel
from channels_app.types import DeliveryReceipt, InboundMessage, OutboundMessage


class PayloadError(Exception):
    """The payload cannot become a message (malformed, missing fields, hostile): quarantine it, don't retry."""


class SignatureError(Exception):
    """The request is not from the provider it claims to be from."""


class RetryableDeliveryError(Exception):
    """A send failed for a reason that may pass (network, timeout, 5xx): try again later."""

    def __init__(self, detail: str, *, code: str = ""):
        super().__init__(detail)
        self.detail = detail
        self.code = code


class SendRateLimited(RetryableDeliveryError):
    """No send slot is free for this sender right now (a provider's per-number rate): not a failed attempt, just
    "try again in ``retry_after`` seconds"."""

    def __init__(self, detail: str, *, retry_after: float, code: str = "rate_limited"):
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class PermanentDeliveryError(Exception):
    """A send the provider refused for good (4xx, invalid recipient): record the reason, don't retry."""

    def __init__(self, detail: str, *, code: str = ""):
        super().__init__(detail)
        self.detail = detail
        self.code = code


# Why a message that the desk writes goes to a customer at all: what consent rules and quiet hours apply.
PURPOSE_REPLY = "reply"  # an agent's answer on a conversation the customer started: transactional
PURPOSE_NOTICE = "notice"  # e.g. "your ticket was routed to billing"
PURPOSE_INCIDENT = "incident"  # an outage that affects them
PURPOSE_SURVEY = "survey"  # CSAT, NPS, CES after a resolution
# The purposes a message the desk starts may have, each of which a customer may unsubscribe from on email.
DESK_STARTED_PURPOSES = (PURPOSE_NOTICE, PURPOSE_INCIDENT, PURPOSE_SURVEY)
PURPOSE_LABELS = {
    PURPOSE_NOTICE: "Notices about their tickets",
    PURPOSE_INCIDENT: "Outage notifications",
    PURPOSE_SURVEY: "Surveys",
}

# Which part of a desk-started message template a channel renders (``ChannelAdapter.message_format``).
FORMAT_EMAIL = "email"  # subject, text and HTML
FORMAT_SMS = "sms"  # one short text within the SMS segment budget
FORMAT_CHAT = "chat"  # a card in the chat widget


@dataclass(frozen=True)
class Reachability:
    """Whether ``identity`` can be written to on a channel now, for a purpose; when not, a stable ``reason`` code
    (``sms_opted_out``, ``email_unsubscribed``, ``visitor_offline``...) and a sentence for the agent."""

    is_reachable: bool
    reason: str = ""
    detail: str = ""


REACHABLE = Reachability(is_reachable=True)


@dataclass(frozen=True)
class Capabilities:
    """What a channel can do beyond sending text, so the core asks instead of testing ``channel.kind``."""

    # An agent's reply may carry files.
    attachments: bool = False
    # A reply may copy further addresses (Cc), and the addresses an inbound message went to become the ticket's
    # participants.
    copies: bool = False
    # An inbound message may name its ticket by a reply token in a plus-address or a "[#123]" in its subject.
    addressed_references: bool = False
    # A new ticket may be answered with the desk's automatic acknowledgement (``tickets.services.acknowledgements``).
    acknowledgement: bool = False


TEXT_ONLY = Capabilities()


class ChannelAdapter(Protocol):
    kind: ClassVar[str]
    provider: ClassVar[str]
    # Which customer identity kind addresses a customer on this channel (email, phone, chat_visitor...).
    recipient_identity_kinds: ClassVar[tuple[str, ...]]
    capabilities: ClassVar[Capabilities]
    # Which template part a message the desk starts is rendered from on this channel (FORMAT_EMAIL, _SMS, _CHAT).
    message_format: ClassVar[str]
    # Whether the channel carries an unsubscribe link in the message's headers (email's List-Unsubscribe).
    supports_list_unsubscribe: ClassVar[bool]

    def verify(self, *, channel: Channel, request: HttpRequest) -> None: ...

    def parse(self, *, channel: Channel, payload: bytes | Mapping, content_type: str = "") -> list[InboundMessage]: ...

    def send(self, *, channel: Channel, message: OutboundMessage) -> DeliveryReceipt: ...

    def reachability(self, *, channel: Channel, identity, purpose: str) -> Reachability:
        """Can the customer be written to at ``identity`` (a ``customers.CustomerIdentity`` of one of
        ``recipient_identity_kinds``) on ``channel`` now, for ``purpose``: SMS opt-out, email unsubscribe from a
        purpose, a chat visitor who is not connected. Reads only; never raises for an unreachable customer."""
        ...

    def reachability_batch(
        self, *, channels: Sequence[Channel], customer_id: int, identities: Sequence, purpose: str
    ) -> dict[int, Reachability]:
        """``reachability`` for a page: for each of ``channels`` (all served by this adapter; channel id -> answer),
        can the customer (``customer_id``, with ``identities``, all of them) be written to there now, in a fixed
        number of queries whatever the number of channels."""
        ...

    def continuation(self, *, channel: Channel, customer_id: int) -> Channel | None:
        """The channel an agent's reply should take instead of ``channel`` because the conversation left it (a
        chat the visitor closed continues by email), or None to reply on ``channel``."""
        ...


class AdapterDefaults:
    """What an adapter that declares nothing more answers: text only, reachable as ``reachability`` says one
    channel at a time, and no hand-over to another channel. Adapters inherit it and override what differs."""

    capabilities: ClassVar[Capabilities] = TEXT_ONLY

    def reachability(self, *, channel: Channel, identity, purpose: str) -> Reachability:
        return REACHABLE

    def reachability_batch(
        self, *, channels: Sequence[Channel], customer_id: int, identities: Sequence, purpose: str
    ) -> dict[int, Reachability]:
        return {channel.pk: REACHABLE for channel in channels}

    def continuation(self, *, channel: Channel, customer_id: int) -> Channel | None:
        return None
