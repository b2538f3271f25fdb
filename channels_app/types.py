"""The channel-neutral shapes that cross the boundary between channel adapters and the core."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class InboundIdentity:
    kind: str  # customers.models.CustomerIdentity.Kind
    value: str  # as the channel saw it; the core normalises it
    is_verified: bool = False


@dataclass(frozen=True)
class InboundAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""  # for inline images (cid:)


@dataclass(frozen=True)
class InboundMessage:
    """One message from a customer, whatever channel brought it."""

    provider_id: str  # unique per channel; the same id twice is the same message
    sender: InboundIdentity
    text: str
    sender_name: str = ""
    html: str = ""
    subject: str = ""
    sent_at: datetime | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    # Further identities the channel knows belong to the sender (e.g. a verified email with a chat visitor).
    extra_identities: tuple[InboundIdentity, ...] = ()
    # A ticket the channel says this continues (e.g. the API's ticket_id); honoured only if it is the sender's.
    ticket_id: int | None = None
    # Provider ids of earlier messages this one answers (email's In-Reply-To and References).
    in_reply_to: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundAttachment:
    filename: str
    content_type: str
    path: str  # in Django's default storage
    size: int


@dataclass(frozen=True)
class OutboundMessage:
    """What an adapter needs to send one message."""

    message_id: int
    ticket_id: int
    recipient: str
    text: str
    html: str = ""
    subject: str = ""
    author_name: str = ""
    attachments: tuple[OutboundAttachment, ...] = ()
    in_reply_to: tuple[str, ...] = ()
    # Sent by the desk itself (an acknowledgement), not written by an agent: marked so (RFC 3834) on channels that can.
    automatic: bool = False
    cc: tuple[str, ...] = ()
    # Written by the desk first (a notice, an outage notification, a survey), not an answer: no "Re:", and marked
    # auto-generated (RFC 3834) on channels that can.
    is_desk_started: bool = False
    # URIs (https, optionally mailto) where the recipient unsubscribes from this kind of message: List-Unsubscribe
    # with RFC 8058 one-click on email. Empty for transactional messages (replies).
    list_unsubscribe: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliveryReceipt:
    provider_message_id: str = ""
    # True when the provider confirms delivery synchronously (no later status callback will come).
    is_delivered: bool = False
    # Other ids the message reached its recipient under (a provider that substitutes its own Message-ID), so
    # answers quoting them still thread.
    aliases: tuple[str, ...] = ()
