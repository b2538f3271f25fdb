"""Merging tickets (tickets.services.merge): what moves, what is refused, and that later answers land on the target."""

import pytest

from channels_app.models import Channel
from channels_app.threading_refs import our_message_id, reply_token
from channels_app.types import InboundIdentity, InboundMessage
from helpdesk.errors import Conflict, NotFound
from tests.factories import (
    AgentFactory,
    ChannelFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
)
from tickets.models import Message, Ticket, TicketParticipant
from tickets.services.ingest import message_ingest
from tickets.services.merge import ticket_merge
from timeline.models import TimelineEvent
from timeline.types import Actor

pytestmark = pytest.mark.django_db

CUSTOMER = "ann@example.com"


@pytest.fixture
def mailbox():
    return ChannelFactory(kind=Channel.Kind.EMAIL, address="support@desk.example", continue_open_ticket=False)


@pytest.fixture
def pair(mailbox):
    """Two open tickets of one customer, each with an email from them; the source also has our reply."""
    customer = CustomerFactory(name="Ann")
    identity = IdentityFactory(customer=customer, kind="email", value=CUSTOMER)
    source = TicketFactory(customer=customer, channel=mailbox, subject="Refund")
    target = TicketFactory(customer=customer, channel=mailbox, subject="Refund, again")
    MessageFactory(ticket=source, channel=mailbox, identity=identity, provider_id="<first@mail.example>")
    MessageFactory(ticket=source, channel=mailbox, direction="outbound", provider_id="", idempotency_key="k1")
    MessageFactory(ticket=target, channel=mailbox, identity=identity, provider_id="<second@mail.example>")
    TicketParticipant.objects.create(ticket=source, email="boss@example.com", role="cc")
    return source, target


def actor():
    return Actor.agent(AgentFactory())


def test_merge_moves_the_messages_and_participants_and_closes_the_source(pair):
    source, target = pair
    moved = sorted(Message.objects.filter(ticket=source).values_list("pk", flat=True))
    agent = actor()

    result = ticket_merge(source=source, target=target, actor=agent)

    source.refresh_from_db()
    assert result.pk == target.pk
    assert (source.merged_into_id, source.status) == (target.pk, "closed")
    assert Message.objects.filter(ticket=source).count() == 0
    assert sorted(Message.objects.filter(ticket=target).values_list("pk", flat=True)) == sorted(
        [*moved, *Message.objects.filter(ticket=target).exclude(pk__in=moved).values_list("pk", flat=True)]
    )
    assert Message.objects.filter(ticket=target).count() == 3
    assert TicketParticipant.objects.filter(ticket=target, email="boss@example.com").exists()
    events = dict(TimelineEvent.objects.filter(type="ticket_merged").values_list("ticket_id", "params"))
    assert events[source.pk]["role"] == "source" and events[target.pk]["role"] == "target"
    assert events[target.pk]["message_ids"] == moved
    assert set(TimelineEvent.objects.filter(type="ticket_merged").values_list("actor_id", flat=True)) == {agent.user.pk}


def test_merging_again_changes_nothing(pair):
    source, target = pair
    ticket_merge(source=source, target=target, actor=actor())
    version = Ticket.objects.get(pk=target.pk).version

    ticket_merge(source=source, target=target, actor=actor())

    assert TimelineEvent.objects.filter(type="ticket_merged").count() == 2
    assert Ticket.objects.get(pk=target.pk).version == version


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda s, t: (s, s), "merge_into_self"),
        (lambda s, t: (s, _merged(t, into=TicketFactory(customer=t.customer))), "target_merged"),
        (lambda s, t: (s, _closed(t)), "target_closed"),
        (lambda s, t: (_closed(s), t), "source_closed"),
        (lambda s, t: (_merged(s, into=TicketFactory(customer=s.customer)), t), "already_merged"),
    ],
    ids=["into itself", "into a merged ticket", "into a closed ticket", "a closed source", "an already merged source"],
)
def test_refused_merges_change_nothing(pair, setup, code):
    source, target = setup(*pair)
    before = list(Message.objects.order_by("pk").values_list("pk", "ticket_id"))

    with pytest.raises(Conflict) as raised:
        ticket_merge(source=source, target=target, actor=actor())

    assert raised.value.code == code
    assert list(Message.objects.order_by("pk").values_list("pk", "ticket_id")) == before
    assert not TimelineEvent.objects.filter(type="ticket_merged").exists()


def test_a_merge_back_the_other_way_is_refused(pair):
    source, target = pair
    ticket_merge(source=source, target=target, actor=actor())

    with pytest.raises(Conflict) as raised:
        ticket_merge(source=target, target=source, actor=actor())

    assert raised.value.code == "target_merged"


def test_clashing_idempotency_keys_do_not_block_the_merge(pair):
    source, target = pair
    MessageFactory(ticket=target, channel=None, direction="note", idempotency_key="k1", provider_id="")

    ticket_merge(source=source, target=target, actor=actor())

    assert Message.objects.filter(ticket=target, idempotency_key="k1").count() == 1


def _inbound(**fields) -> InboundMessage:
    return InboundMessage(
        provider_id=fields.pop("provider_id"),
        sender=InboundIdentity(kind="email", value=CUSTOMER),
        text="Any news?",
        subject=fields.pop("subject", "Re: Refund"),
        **fields,
    )


def test_later_answers_to_the_sources_message_ids_land_on_the_target(pair, mailbox):
    source, target = pair
    ours = Message.objects.get(ticket=source, direction="outbound")
    ticket_merge(source=source, target=target, actor=actor())

    by_their_id = message_ingest(
        channel=mailbox, inbound=_inbound(provider_id="<a1@mail.example>", in_reply_to=("<first@mail.example>",))
    )
    by_our_id = message_ingest(
        channel=mailbox,
        inbound=_inbound(
            provider_id="<a2@mail.example>", in_reply_to=(our_message_id(message_id=ours.pk, domain="desk.example"),)
        ),
    )
    by_token = message_ingest(
        channel=mailbox,
        inbound=_inbound(
            provider_id="<a3@mail.example>",
            metadata={"to": [f"support+{reply_token(ticket_id=source.pk)}@desk.example"]},
        ),
    )
    by_subject = message_ingest(
        channel=mailbox, inbound=_inbound(provider_id="<a4@mail.example>", subject=f"Re: Refund [#{source.pk}]")
    )

    assert [r.message.ticket_id for r in (by_their_id, by_our_id, by_token, by_subject)] == [target.pk] * 4


def test_merging_into_another_customers_ticket_moves_the_messages_to_that_customer(pair):
    source, _ = pair
    other = TicketFactory(customer=CustomerFactory(name="Bo"))

    ticket_merge(source=source, target=other, actor=actor())

    assert set(Message.objects.filter(ticket=other).values_list("customer_id", flat=True)) == {other.customer_id}


def _merged(ticket: Ticket, *, into: Ticket) -> Ticket:
    Ticket.objects.filter(pk=ticket.pk).update(merged_into=into, status="closed")
    ticket.refresh_from_db()
    return ticket


def _closed(ticket: Ticket) -> Ticket:
    Ticket.objects.filter(pk=ticket.pk).update(status="closed")
    ticket.refresh_from_db()
    return ticket


@pytest.mark.parametrize("moved", ["source", "target"])
def test_an_agent_may_not_merge_a_ticket_that_moved_out_of_their_sight_and_nothing_moves(pair, moved):
    # The agent's page read both tickets while they were Billing's; one moved to Shipping before the merge.
    source, target = pair
    billing, shipping = TeamFactory(name="Billing"), TeamFactory(name="Shipping")
    agent = AgentFactory()
    agent.agent_profile.teams.add(billing)
    Ticket.objects.filter(pk__in=[source.pk, target.pk]).update(team=billing)
    Ticket.objects.filter(pk=source.pk if moved == "source" else target.pk).update(team=shipping)
    messages_before = list(Message.objects.order_by("pk").values_list("pk", "ticket_id"))

    with pytest.raises(NotFound):
        ticket_merge(source=source, target=target, actor=Actor.agent(agent))

    assert Ticket.objects.get(pk=source.pk).merged_into_id is None
    assert list(Message.objects.order_by("pk").values_list("pk", "ticket_id")) == messages_before
    assert not TimelineEvent.objects.filter(type="ticket_merged").exists()
