"""What each built-in adapter declares it can do beyond text, and that the core obeys the declaration instead of the
channel's kind: attachments and copies on a reply, and nothing for a channel without an adapter."""

import pytest

from channels_app.adapters.base import TEXT_ONLY, Capabilities
from channels_app.adapters.registry import capabilities_for
from channels_app.models import Channel
from helpdesk.errors import DomainError
from tests.factories import AgentFactory, ChannelFactory, CustomerFactory, TicketFactory
from tickets.models import Message
from tickets.services.replies import ReplyAttachment, reply_create

pytestmark = pytest.mark.django_db

EVERYTHING = Capabilities(attachments=True, copies=True, addressed_references=True, acknowledgement=True)


@pytest.mark.parametrize(
    ("kind", "provider", "expected"),
    [
        (Channel.Kind.EMAIL, "", EVERYTHING),
        (Channel.Kind.SMS, "", TEXT_ONLY),
        (Channel.Kind.CHAT, "", TEXT_ONLY),
        (Channel.Kind.API, "", TEXT_ONLY),
        (Channel.Kind.SMS, "no-such-provider", TEXT_ONLY),
    ],
)
def test_each_channel_has_the_capabilities_its_adapter_declares(kind, provider, expected):
    channel = ChannelFactory(kind=kind, provider=provider)

    assert capabilities_for(channel) == expected


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"attachments": [ReplyAttachment("a.txt", "text/plain", b"hello")]}, "attachments_not_supported"),
        ({"cc": ["bob@example.com"]}, "cc_not_supported"),
    ],
)
def test_a_reply_with_what_the_channel_cannot_carry_is_refused_and_nothing_is_written(options, code):
    channel = ChannelFactory(kind=Channel.Kind.API)
    customer = CustomerFactory()
    customer.identities.create(kind="external", value="u-1")
    ticket = TicketFactory(customer=customer, channel=channel)

    with pytest.raises(DomainError) as raised:
        reply_create(ticket=ticket, author=AgentFactory(), text="Here you are.", channel=channel, **options)

    assert raised.value.code == code
    assert not Message.objects.filter(ticket=ticket).exists()
