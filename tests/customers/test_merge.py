"""customer_merge and customer_merge_undo: what moves, what is recorded, what comes back, and what is refused."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels_app.models import Channel
from channels_app.types import InboundIdentity, InboundMessage
from chat.models import ChatVisitor
from customers.models import ContextEvent, Customer, CustomerIdentity, CustomerMerge, EmailSubscription
from customers.services import customer_merge, customer_merge_undo, customer_resolve
from customers.types import IdentityInput
from helpdesk.errors import Conflict, NotFound
from tests.factories import (
    AgentFactory,
    ChannelFactory,
    ContextEventFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
    TimelineEventFactory,
)
from tickets.models import Message, Ticket
from tickets.selectors.timeline import customer_timeline
from tickets.services import ingest
from tickets.services.ingest import message_ingest
from timeline.models import TimelineEvent
from timeline.types import Actor

pytestmark = pytest.mark.django_db

SOURCE_EMAIL = "maria.old@example.com"
SOURCE_PHONE = "+14155550123"
PROFILE = ("name", "company", "plan", "locale", "time_zone", "lifetime_value", "attributes", "merged_into_id")


@pytest.fixture
def agent():
    return AgentFactory()


@pytest.fixture
def actor(agent) -> Actor:
    return Actor.agent(agent)


@pytest.fixture
def email_channel() -> Channel:
    return ChannelFactory(kind=Channel.Kind.EMAIL, address="support@desk.example", continue_open_ticket=False)


@pytest.fixture
def target() -> Customer:
    customer = CustomerFactory(
        name="María García", company="", plan="", locale="es-ES", time_zone="", attributes={"shared": "target"}
    )
    IdentityFactory(customer=customer, value="maria@example.com", is_primary=True)
    return customer


@pytest.fixture
def source(email_channel) -> dict:
    """A second record of the same person, with a row of every kind that belongs to a customer."""
    customer = CustomerFactory(
        name="M. Garcia",
        company="Acme",
        plan="enterprise",
        locale="en-US",
        time_zone="Europe/Madrid",
        lifetime_value=Decimal("1250.50"),
        attributes={"shared": "source", "vip": True},
    )
    email = IdentityFactory(customer=customer, value=SOURCE_EMAIL, is_primary=True)
    phone = IdentityFactory(customer=customer, kind=CustomerIdentity.Kind.PHONE, value=SOURCE_PHONE)
    ticket = TicketFactory(customer=customer, subject="Where is my order?")
    message = MessageFactory(ticket=ticket, channel=email_channel, text="My order A-7 has not arrived.")
    event = TimelineEventFactory(ticket=ticket)
    order = ContextEventFactory(customer=customer, type="order.placed", source="shop", external_id="A-7")
    cart = ContextEventFactory(customer=customer, type="cart.updated", source="shop", external_id="cart-1")
    chat = ChannelFactory(kind=Channel.Kind.CHAT)
    visitor = ChatVisitor.objects.create(channel=chat, customer=customer)
    customer.preferred_channel = chat
    customer.save(update_fields=["preferred_channel"])
    unsubscribed = EmailSubscription.objects.create(
        customer=customer, purpose="survey", is_subscribed=False, source=EmailSubscription.Source.UNSUBSCRIBE_LINK
    )
    return {
        "customer": customer,
        "identities": sorted([email.pk, phone.pk]),
        "primary": [email.pk],
        "ticket": ticket,
        "message": message,
        "event": event,
        "order": order,
        "cart": cart,
        "visitor": visitor,
        "chat": chat,
        "unsubscribed": unsubscribed,
    }


def profile(customer: Customer) -> dict:
    customer.refresh_from_db()
    return {field: getattr(customer, field) for field in PROFILE}


def test_merge_moves_every_row_and_records_exactly_which(source, target, actor, agent):
    # The target already has the cart event under the same (source, external_id): that one cannot move.
    conflicting = ContextEventFactory(customer=target, type="cart.updated", source="shop", external_id="cart-1")
    customer = source["customer"]

    merge = customer_merge(source=customer, target=target, actor=actor)

    assert merge.moved == {
        "identities": source["identities"],
        "tickets": [source["ticket"].pk],
        "messages": [source["message"].pk],
        "timeline_events": [source["event"].pk],
        "context_events": [source["order"].pk],
        "chat_visitors": [source["visitor"].pk],
        "context_events_kept": [source["cart"].pk],
        "primary_identities": source["primary"],
        "repointed_customers": [],
        "email_subscriptions": [source["unsubscribed"].pk],
        "email_subscriptions_overridden": [],
        "filled_fields": {
            "company": "Acme",
            "plan": "enterprise",
            "time_zone": "Europe/Madrid",
            "lifetime_value": "1250.50",
            "preferred_channel_id": source["chat"].pk,
        },
        "attributes_added": {"vip": True},
    }
    assert set(CustomerIdentity.objects.filter(customer=target).values_list("value", "is_primary")) == {
        ("maria@example.com", True),
        (SOURCE_EMAIL, False),
        (SOURCE_PHONE, False),
    }
    assert Ticket.objects.get(pk=source["ticket"].pk).customer_id == target.pk
    assert Message.objects.get(pk=source["message"].pk).customer_id == target.pk
    assert TimelineEvent.objects.get(pk=source["event"].pk).customer_id == target.pk
    assert ContextEvent.objects.get(pk=source["order"].pk).customer_id == target.pk
    assert ContextEvent.objects.get(pk=source["cart"].pk).customer_id == customer.pk
    assert ContextEvent.objects.get(pk=conflicting.pk).customer_id == target.pk
    assert ChatVisitor.objects.get(pk=source["visitor"].pk).customer_id == target.pk
    # The target's own values win; only blanks were filled.
    assert profile(target) == {
        "name": "María García",
        "company": "Acme",
        "plan": "enterprise",
        "locale": "es-ES",
        "time_zone": "Europe/Madrid",
        "lifetime_value": Decimal("1250.50"),
        "attributes": {"shared": "target", "vip": True},
        "merged_into_id": None,
    }
    assert profile(customer)["merged_into_id"] == target.pk
    assert merge.source_snapshot == {
        "name": "M. Garcia",
        "company": "Acme",
        "plan": "enterprise",
        "locale": "en-US",
        "time_zone": "Europe/Madrid",
        "lifetime_value": "1250.50",
        "preferred_channel_id": source["chat"].pk,
        "attributes": {"shared": "source", "vip": True},
    }
    assert (merge.source_id, merge.target_id, merge.actor_id, merge.undone_at) == (
        customer.pk,
        target.pk,
        agent.pk,
        None,
    )
    event = TimelineEvent.objects.get(type=TimelineEvent.Type.CUSTOMER_MERGED)
    assert (event.customer_id, event.actor_id, event.params["merge_id"], event.params["source_id"]) == (
        target.pk,
        agent.pk,
        merge.pk,
        customer.pk,
    )


def test_the_targets_timeline_shows_the_sources_messages(source, target, actor):
    customer_merge(source=source["customer"], target=target, actor=actor)

    entries = customer_timeline(customer=target).entries

    assert source["message"].pk in {entry.id for entry in entries if entry.kind == "message"}
    assert source["order"].pk in {entry.id for entry in entries if entry.kind == "context"}
    assert next(entry.item.type for entry in entries if entry.kind == "event") == TimelineEvent.Type.CUSTOMER_MERGED


def test_the_next_email_from_the_sources_address_lands_on_the_target(source, target, actor, email_channel):
    customer_merge(source=source["customer"], target=target, actor=actor)

    result = message_ingest(
        channel=email_channel,
        inbound=InboundMessage(
            provider_id="<after-merge@mail.example>",
            sender=InboundIdentity(kind="email", value=SOURCE_EMAIL.upper()),
            text="Any news?",
        ),
    )

    assert result.message.customer_id == target.pk
    assert result.ticket.customer_id == target.pk
    assert not Message.objects.filter(customer=source["customer"]).exists()


def test_an_identity_still_on_a_merged_customer_resolves_to_the_survivor(target, actor):
    merged = CustomerFactory()
    customer_merge(source=merged, target=target, actor=actor)
    # As a batch import that read the identity before the merge committed would see it.
    IdentityFactory(customer=merged, value="stale@example.com")

    customer, identity, created = customer_resolve(identity=IdentityInput(kind="email", value="stale@example.com"))

    assert (customer.pk, identity.customer_id, created) == (target.pk, merged.pk, False)


def test_undo_moves_back_exactly_what_moved_and_restores_both_profiles(source, target, actor, agent, email_channel):
    customer = source["customer"]
    ContextEventFactory(customer=target, type="cart.updated", source="shop", external_id="cart-1")
    source_before, target_before = profile(customer), profile(target)
    merge = customer_merge(source=customer, target=target, actor=actor)
    # After the merge: a new ticket on the target (from the source's address), and an agent edits the plan.
    later = message_ingest(
        channel=email_channel,
        inbound=InboundMessage(
            provider_id="<later@mail.example>", sender=InboundIdentity(kind="email", value=SOURCE_EMAIL), text="Hi"
        ),
    )
    Customer.objects.filter(pk=target.pk).update(plan="pro")

    undone = customer_merge_undo(merge=merge, actor=actor)

    assert (undone.pk, undone.undone_by_id) == (merge.pk, agent.pk)
    assert undone.undone_at is not None
    assert profile(customer) == source_before
    # Filled fields are blank again, except the plan an agent changed since.
    assert profile(target) == {**target_before, "plan": "pro"}
    assert (
        sorted(CustomerIdentity.objects.filter(customer=customer).values_list("pk", flat=True)) == source["identities"]
    )
    assert (
        list(CustomerIdentity.objects.filter(customer=customer, is_primary=True).values_list("pk", flat=True))
        == (source["primary"])
    )
    assert Ticket.objects.get(pk=source["ticket"].pk).customer_id == customer.pk
    assert Message.objects.get(pk=source["message"].pk).customer_id == customer.pk
    assert TimelineEvent.objects.get(pk=source["event"].pk).customer_id == customer.pk
    assert ContextEvent.objects.get(pk=source["order"].pk).customer_id == customer.pk
    assert ChatVisitor.objects.get(pk=source["visitor"].pk).customer_id == customer.pk
    # What arrived after the merge stays where it arrived.
    assert Ticket.objects.get(pk=later.ticket.pk).customer_id == target.pk
    assert Message.objects.get(pk=later.message.pk).customer_id == target.pk
    assert sorted(
        TimelineEvent.objects.filter(type=TimelineEvent.Type.CUSTOMER_MERGE_UNDONE).values_list(
            "customer_id", flat=True
        )
    ) == sorted([customer.pk, target.pk])


def test_a_second_undo_changes_nothing_and_returns_the_same_merge(source, target, actor):
    merge = customer_merge(source=source["customer"], target=target, actor=actor)
    first = customer_merge_undo(merge=merge, actor=actor)
    events = TimelineEvent.objects.count()

    second = customer_merge_undo(merge=CustomerMerge.objects.get(pk=merge.pk), actor=Actor.agent(AgentFactory()))

    assert (second.pk, second.undone_at, second.undone_by_id) == (first.pk, first.undone_at, first.undone_by_id)
    assert TimelineEvent.objects.count() == events
    assert Ticket.objects.get(pk=source["ticket"].pk).customer_id == source["customer"].pk


def test_merging_a_customer_into_itself_is_refused(target, actor):
    before = profile(target)

    with pytest.raises(Conflict, match="cannot be merged into itself"):
        customer_merge(source=target, target=target, actor=actor)

    assert profile(target) == before
    assert not CustomerMerge.objects.exists()


def test_merging_into_a_merged_customer_or_a_merged_customer_again_is_refused(source, target, actor):
    other = CustomerFactory()
    customer_merge(source=other, target=target, actor=actor)
    events = TimelineEvent.objects.count()

    with pytest.raises(Conflict, match=f"was itself merged into customer {target.pk}"):
        customer_merge(source=source["customer"], target=other, actor=actor)
    with pytest.raises(Conflict, match=f"was already merged into customer {target.pk}"):
        customer_merge(source=other, target=source["customer"], actor=actor)

    assert CustomerMerge.objects.count() == 1
    assert TimelineEvent.objects.count() == events
    assert Ticket.objects.get(pk=source["ticket"].pk).customer_id == source["customer"].pk


def test_no_chains_a_merged_target_passes_its_merged_customers_on_and_undo_goes_in_order(target, actor):
    first, last = CustomerFactory(), CustomerFactory()
    first_ticket = TicketFactory(customer=first)
    into_target = customer_merge(source=first, target=target, actor=actor)

    into_last = customer_merge(source=target, target=last, actor=actor)

    assert Customer.objects.get(pk=first.pk).merged_into_id == last.pk
    assert Ticket.objects.get(pk=first_ticket.pk).customer_id == last.pk
    with pytest.raises(Conflict, match="merged into another customer since"):
        customer_merge_undo(merge=into_target, actor=actor)
    assert CustomerMerge.objects.get(pk=into_target.pk).undone_at is None

    customer_merge_undo(merge=into_last, actor=actor)
    assert Customer.objects.get(pk=first.pk).merged_into_id == target.pk
    assert Ticket.objects.get(pk=first_ticket.pk).customer_id == target.pk

    customer_merge_undo(merge=into_target, actor=actor)
    assert Customer.objects.get(pk=first.pk).merged_into_id is None
    assert Ticket.objects.get(pk=first_ticket.pk).customer_id == first.pk
    assert timezone.now() >= CustomerMerge.objects.get(pk=into_target.pk).undone_at


@pytest.mark.parametrize("is_automatic", [False, True], ids=["customer's message", "auto-reply"])
def test_a_merge_committed_between_reading_the_sender_and_locking_the_customer_still_lands_on_the_target(
    source, target, actor, email_channel, monkeypatch, is_automatic
):
    # The race, made deterministic: ingestion read the sender's identity (customer = the source), then a merge
    # committed before it locked that customer.
    stale = Customer.objects.get(pk=source["customer"].pk)
    identity = CustomerIdentity.objects.get(value=SOURCE_EMAIL)
    customer_merge(source=source["customer"], target=target, actor=actor)
    monkeypatch.setattr(ingest, "customer_resolve", lambda **kwargs: (stale, identity, False))

    result = message_ingest(
        channel=email_channel,
        inbound=InboundMessage(
            provider_id="<raced-with-the-merge@mail.example>",
            sender=InboundIdentity(kind="email", value=SOURCE_EMAIL),
            text="Sent as the merge happened",
            metadata={"is_automatic": is_automatic},
        ),
    )

    assert result.message.customer_id == target.pk
    assert result.ticket.customer_id == target.pk
    assert not Message.objects.filter(customer=source["customer"], text="Sent as the merge happened").exists()


# --- Access: an agent merges only customers whose tickets they may all see ------------------------------------


@pytest.mark.parametrize("hidden_on", ["source", "target"])
def test_an_agent_may_not_merge_a_customer_with_another_teams_ticket_and_nothing_moves(hidden_on):
    billing, shipping = TeamFactory(name="Billing"), TeamFactory(name="Shipping")
    agent = AgentFactory()
    agent.agent_profile.teams.add(billing)
    source, target = CustomerFactory(), CustomerFactory()
    own = TicketFactory(customer=source, team=billing)
    MessageFactory(ticket=own)
    hidden = TicketFactory(customer=source if hidden_on == "source" else target, team=shipping)
    events_before = TimelineEvent.objects.count()

    with pytest.raises(NotFound):
        customer_merge(source=source, target=target, actor=Actor.agent(agent))

    assert Ticket.objects.get(pk=own.pk).customer_id == source.pk
    assert Ticket.objects.get(pk=hidden.pk).customer_id == hidden.customer_id
    assert Message.objects.get(ticket=own).customer_id == source.pk
    assert Customer.objects.get(pk=source.pk).merged_into_id is None
    assert not CustomerMerge.objects.exists()
    assert TimelineEvent.objects.count() == events_before


def test_an_agent_who_sees_every_ticket_may_merge_and_the_system_always_may():
    billing, shipping = TeamFactory(name="Billing"), TeamFactory(name="Shipping")
    agent = AgentFactory()
    agent.agent_profile.teams.add(billing)
    source, target, other = CustomerFactory(), CustomerFactory(), CustomerFactory()
    TicketFactory(customer=source, team=billing)
    TicketFactory(customer=source, team=None)  # unrouted: every agent sees it
    TicketFactory(customer=target, team=shipping, assignee=agent)  # assigned to them: they see it
    hidden = TicketFactory(customer=other, team=shipping)

    customer_merge(source=source, target=target, actor=Actor.agent(agent))
    customer_merge(source=other, target=target, actor=Actor.system())

    assert Ticket.objects.filter(customer=target).count() == 4
    assert Ticket.objects.get(pk=hidden.pk).customer_id == target.pk


def test_an_agent_may_not_undo_a_merge_that_moved_another_teams_ticket():
    shipping = TeamFactory(name="Shipping")
    source, target = CustomerFactory(), CustomerFactory()
    hidden = TicketFactory(customer=source, team=shipping)
    merge = customer_merge(source=source, target=target, actor=Actor.system())

    with pytest.raises(NotFound):
        customer_merge_undo(merge=merge, actor=Actor.agent(AgentFactory()))

    assert Ticket.objects.get(pk=hidden.pk).customer_id == target.pk
    assert CustomerMerge.objects.get().undone_at is None


def test_a_merge_keeps_the_persons_email_consent_and_undo_gives_it_back(source, target, actor):
    customer = source["customer"]
    # Both records decided on incidents: the target's agent-set "subscribed" is older than the source's unsubscribe.
    older = EmailSubscription.objects.create(
        customer=target, purpose="incident", is_subscribed=True, source=EmailSubscription.Source.AGENT
    )
    EmailSubscription.objects.filter(pk=older.pk).update(updated_at=timezone.now() - timedelta(days=1))
    later = EmailSubscription.objects.create(
        customer=customer, purpose="incident", is_subscribed=False, source=EmailSubscription.Source.UNSUBSCRIBE_LINK
    )

    merge = customer_merge(source=customer, target=target, actor=actor)

    consent = dict(EmailSubscription.objects.filter(customer=target).values_list("purpose", "is_subscribed"))
    assert consent == {"survey": False, "incident": False}
    assert Customer.objects.get(pk=target.pk).preferred_channel_id == source["chat"].pk
    assert merge.moved["email_subscriptions_overridden"] == [
        {"id": older.pk, "is_subscribed": True, "source": EmailSubscription.Source.AGENT}
    ]
    assert EmailSubscription.objects.get(pk=later.pk).customer_id == customer.pk  # the source keeps its own row

    customer_merge_undo(merge=merge, actor=actor)

    assert dict(EmailSubscription.objects.filter(customer=target).values_list("purpose", "is_subscribed")) == {
        "incident": True
    }
    assert EmailSubscription.objects.get(pk=source["unsubscribed"].pk).customer_id == customer.pk
    assert Customer.objects.get(pk=target.pk).preferred_channel_id is None
    assert Customer.objects.get(pk=customer.pk).preferred_channel_id == source["chat"].pk


def test_a_newer_subscription_on_the_target_is_not_overridden_by_an_older_unsubscribe(source, target, actor):
    customer = source["customer"]
    EmailSubscription.objects.filter(pk=source["unsubscribed"].pk).update(updated_at=timezone.now() - timedelta(days=1))
    EmailSubscription.objects.create(
        customer=target, purpose="survey", is_subscribed=True, source=EmailSubscription.Source.AGENT
    )

    merge = customer_merge(source=customer, target=target, actor=actor)

    assert EmailSubscription.objects.get(customer=target, purpose="survey").is_subscribed is True
    assert (merge.moved["email_subscriptions"], merge.moved["email_subscriptions_overridden"]) == ([], [])
