"""customers.services.customer_touch_by_identity: a known sender's customer found, touched and locked in one
statement; anything else left to customer_resolve."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import Channel
from customers.models import CustomerIdentity
from customers.services import customer_merge, customer_touch_by_identity
from customers.types import IdentityInput
from tests.factories import ChannelFactory, CustomerFactory, IdentityFactory
from timeline.types import Actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def sms() -> Channel:
    return ChannelFactory(kind=Channel.Kind.SMS, address="+14155559999")


def test_a_known_senders_customer_is_touched_in_one_statement(sms, django_assert_num_queries):
    identity = IdentityFactory(kind="phone", value="+14155550100", customer=CustomerFactory(name="Ann"))
    long_ago = timezone.now() - timedelta(days=30)
    type(identity.customer).objects.filter(pk=identity.customer_id).update(last_seen_at=long_ago)

    with django_assert_num_queries(1):
        customer, identity_id = customer_touch_by_identity(
            identity=IdentityInput(kind="phone", value="+14155550100"), channel=sms, name="Someone Else"
        )

    assert (customer.pk, identity_id) == (identity.customer_id, identity.pk)
    customer.refresh_from_db()
    assert customer.last_channel_id == sms.pk
    assert customer.last_seen_at > long_ago
    assert customer.name == "Ann"  # a name they have is kept


def test_a_nameless_customer_gets_the_senders_name_and_a_verified_identity_is_marked(sms):
    identity = IdentityFactory(
        kind="email", value="bo@example.com", customer=CustomerFactory(name=""), is_verified=False
    )

    customer, _ = customer_touch_by_identity(
        identity=IdentityInput(kind="email", value="bo@example.com", is_verified=True), channel=sms, name="Bo"
    )

    assert customer.name == "Bo"
    customer.refresh_from_db()
    assert customer.name == "Bo"
    assert CustomerIdentity.objects.get(pk=identity.pk).is_verified is True


def test_an_unknown_sender_or_a_merged_customer_is_left_to_customer_resolve(sms):
    assert (
        customer_touch_by_identity(identity=IdentityInput(kind="email", value="new@example.com"), channel=sms) is None
    )

    source = IdentityFactory(kind="email", value="old@example.com").customer
    target = CustomerFactory()
    # A merge moves the identity to the target: found there. A row still naming the merged customer is not touched.
    customer_merge(source=source, target=target, actor=Actor.system())
    customer, _ = customer_touch_by_identity(identity=IdentityInput(kind="email", value="old@example.com"), channel=sms)
    assert customer.pk == target.pk

    stale = IdentityFactory(kind="email", value="stale@example.com", customer=CustomerFactory())
    type(stale.customer).objects.filter(pk=stale.customer_id).update(merged_into=target)
    assert (
        customer_touch_by_identity(identity=IdentityInput(kind="email", value="stale@example.com"), channel=sms) is None
    )
