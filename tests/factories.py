"""factory_boy factories for the domain models."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from agents.models import AgentProfile, Team
from channels_app.models import Channel
from customers.models import ContextEvent, Customer, CustomerIdentity
from tickets.models import CannedResponse, Message, Ticket
from timeline.models import TimelineEvent


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"agent{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@desk.example")
    # Hashed before the row is saved: a post-generation set_password would leave the stored row without it, and
    # sessions (force_login) would then fail their hash check.
    password = factory.django.Password("correct-horse-battery")


class AgentFactory(UserFactory):
    """A user with an agent profile (role agent unless ``profile__role`` says otherwise)."""

    profile = factory.RelatedFactory(
        "tests.factories.AgentProfileFactory", factory_related_name="user", role=AgentProfile.Role.AGENT
    )


class AdminFactory(UserFactory):
    is_staff = True
    profile = factory.RelatedFactory(
        "tests.factories.AgentProfileFactory", factory_related_name="user", role=AgentProfile.Role.ADMIN
    )


class AgentProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentProfile

    user = factory.SubFactory(UserFactory)
    display_name = factory.LazyAttribute(lambda profile: profile.user.username.title())


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    kind = Channel.Kind.API
    name = factory.Sequence(lambda n: f"Channel {n}")
    continue_open_ticket = True


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Faker("name")


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerIdentity

    customer = factory.SubFactory(CustomerFactory)
    kind = CustomerIdentity.Kind.EMAIL
    value = factory.Sequence(lambda n: f"customer{n}@example.com")
    is_verified = True


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    customer = factory.SubFactory(CustomerFactory)
    subject = factory.Sequence(lambda n: f"Question {n}")
    status = Ticket.Status.OPEN
    last_message_at = factory.LazyFunction(timezone.now)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    ticket = factory.SubFactory(TicketFactory)
    customer = factory.SelfAttribute("ticket.customer")
    channel = factory.SubFactory(ChannelFactory)
    direction = Message.Direction.INBOUND
    text = factory.Sequence(lambda n: f"Message body {n}")
    provider_id = factory.Sequence(lambda n: f"provider-{n}")


class TimelineEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimelineEvent

    ticket = factory.SubFactory(TicketFactory)
    customer = factory.SelfAttribute("ticket.customer")
    type = TimelineEvent.Type.STATUS_CHANGED
    actor_kind = TimelineEvent.ActorKind.SYSTEM
    params = factory.LazyFunction(lambda: {"from": "new", "to": "open"})


class ContextEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContextEvent

    customer = factory.SubFactory(CustomerFactory)
    type = "order.placed"
    payload = factory.LazyFunction(lambda: {"order_id": "A-1", "total": "19.90"})
    occurred_at = factory.LazyFunction(timezone.now)


class CannedResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CannedResponse

    title = factory.Sequence(lambda n: f"Canned {n}")
    body = "Hello {{ customer.name }}, about ticket #{{ ticket.id }}: "
