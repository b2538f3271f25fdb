"""The Twilio adapter's answer to "can this customer be texted now": no, once they texted STOP, for every purpose
and from every one of our numbers; the ticket page asks for all its SMS channels in one query."""

import pytest

from channels_app.adapters.base import PURPOSE_NOTICE, PURPOSE_REPLY
from channels_app.adapters.registry import adapter_for
from channels_app.models import Channel, SmsOptOut
from tests.factories import ChannelFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def numbers():
    return [ChannelFactory(kind=Channel.Kind.SMS, provider="twilio", address=f"+1500555000{n}") for n in (6, 7)]


@pytest.fixture
def customer():
    customer = CustomerFactory()
    customer.identities.create(kind="phone", value="+14155550101")
    customer.identities.create(kind="email", value="ann@example.com")
    return customer


@pytest.mark.parametrize("purpose", [PURPOSE_REPLY, PURPOSE_NOTICE])
def test_a_customer_who_texted_stop_is_unreachable_on_every_number(numbers, customer, purpose):
    SmsOptOut.objects.create(phone="+14155550101", channel=numbers[0], keyword="STOP")
    adapter = adapter_for(numbers[0])
    phone = customer.identities.get(kind="phone")

    single = adapter.reachability(channel=numbers[1], identity=phone, purpose=purpose)
    batch = adapter.reachability_batch(
        channels=numbers, customer_id=customer.pk, identities=list(customer.identities.all()), purpose=purpose
    )

    assert (single.is_reachable, single.reason) == (False, "sms_opted_out")
    assert {pk: (answer.is_reachable, answer.reason) for pk, answer in batch.items()} == {
        numbers[0].pk: (False, "sms_opted_out"),
        numbers[1].pk: (False, "sms_opted_out"),
    }


def test_the_batch_asks_once_for_all_numbers_and_not_at_all_without_a_phone(
    numbers, customer, django_assert_num_queries
):
    adapter = adapter_for(numbers[0])
    identities = list(customer.identities.all())

    with django_assert_num_queries(1):
        batch = adapter.reachability_batch(
            channels=numbers, customer_id=customer.pk, identities=identities, purpose=PURPOSE_NOTICE
        )
    with django_assert_num_queries(0):
        without_phone = adapter.reachability_batch(
            channels=numbers,
            customer_id=customer.pk,
            identities=[i for i in identities if i.kind == "email"],
            purpose=PURPOSE_NOTICE,
        )

    assert [answer.is_reachable for answer in batch.values()] == [True, True]
    assert [answer.is_reachable for answer in without_phone.values()] == [True, True]
