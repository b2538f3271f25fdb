"""The customer profile's "When we write first" form: an agent sets the preferred channel and the email
subscriptions per purpose; each change is on the timeline, a save that changes nothing records nothing."""

import pytest
from django.test import Client

from channels_app.models import Channel, SmsOptOut
from customers.models import Customer, EmailSubscription
from tests.console.conftest import csrf_token
from tests.factories import ChannelFactory, CustomerFactory, IdentityFactory
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db


def profile_url(customer) -> str:
    return f"/console/customers/{customer.pk}/"


def form_url(customer) -> str:
    return f"/console/customers/{customer.pk}/contact-preferences/"


def save(client, customer, *, htmx=True, **fields):
    token = csrf_token(client, profile_url(customer))
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(form_url(customer), data={"csrfmiddlewaretoken": token, **fields}, headers=headers)


def events(type) -> list[dict]:
    return list(TimelineEvent.objects.filter(type=type).values_list("params", flat=True))


def test_the_profile_shows_the_preferences(console_client):
    customer = CustomerFactory()
    phone = IdentityFactory(customer=customer, kind="phone", value="+14155550100")
    IdentityFactory(customer=customer, kind="email", value="ann@example.com")
    SmsOptOut.objects.create(phone=phone.value, keyword="STOP")
    EmailSubscription.objects.create(customer=customer, purpose="survey", is_subscribed=False, source="agent")
    ChannelFactory(kind=Channel.Kind.EMAIL, name="Support mail")

    # The profile loads the form after the page (htmx), from its own URL
    assert f'hx-get="{form_url(customer)}"' in console_client.get(profile_url(customer)).content.decode()
    page = console_client.get(form_url(customer), headers={"HX-Request": "true"}).content.decode()

    assert "When we write first" in page
    assert '<option value="" selected>' not in page  # "no preference" is simply the first option
    assert "Support mail (Email)" in page
    assert '<input type="checkbox" name="email_notice" checked>' in page
    assert '<input type="checkbox" name="email_survey">' in page
    assert "opted out (texted STOP)" in page


def test_without_script_the_form_is_a_page_of_its_own(console_client):
    customer = CustomerFactory(name="Ann Lee")

    response = console_client.get(form_url(customer))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>Contact preferences: Ann Lee" in page and 'name="preferred_channel"' in page


def test_only_channels_that_can_reach_the_customer_are_offered(console_client):
    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="email", value="ann@example.com")
    ChannelFactory(kind=Channel.Kind.EMAIL, name="Support mail")
    ChannelFactory(kind=Channel.Kind.SMS, provider="twilio", name="Texts")

    page = console_client.get(form_url(customer), headers={"HX-Request": "true"}).content.decode()

    assert "Support mail (Email)" in page
    assert "Texts (SMS)" not in page  # no phone number to text


def test_an_agent_sets_the_preferred_channel_and_unsubscribes_a_purpose(console_client, console_agent):
    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="email", value="ann@example.com")
    mailbox = ChannelFactory(kind=Channel.Kind.EMAIL, name="Support mail")

    response = save(console_client, customer, preferred_channel=str(mailbox.pk), email_notice="on", email_incident="on")

    # Then the browser goes back to the profile, whose timeline shows the change
    assert (response.status_code, response.headers["HX-Redirect"]) == (204, profile_url(customer))
    assert Customer.objects.get(pk=customer.pk).preferred_channel_id == mailbox.pk
    assert list(EmailSubscription.objects.values_list("purpose", "is_subscribed", "source")) == [
        ("survey", False, "agent")
    ]
    [preferred] = events(TimelineEvent.Type.PREFERRED_CHANNEL_CHANGED)
    assert preferred == {"from": None, "to": mailbox.pk, "channel": "Support mail"}
    [subscription] = events(TimelineEvent.Type.EMAIL_SUBSCRIPTION_CHANGED)
    assert subscription == {"purpose": "survey", "is_subscribed": False, "source": "agent"}
    event = TimelineEvent.objects.get(type=TimelineEvent.Type.EMAIL_SUBSCRIPTION_CHANGED)
    assert (event.customer_id, event.actor_id) == (customer.pk, console_agent.pk)
    page = console_client.get(profile_url(customer)).content.decode()
    assert "Contact preferences saved: the change is on the timeline." in page
    assert "unsubscribed from survey emails" in page
    assert 'Preferred channel changed</span>:\n  <span class="event-params">now Support mail' in page


def test_saving_what_is_already_set_records_nothing(console_client):
    customer = CustomerFactory()

    response = save(console_client, customer, email_notice="on", email_incident="on", email_survey="on")

    assert "Nothing changed." in response.content.decode()
    assert not EmailSubscription.objects.exists()
    assert not TimelineEvent.objects.exists()


@pytest.mark.parametrize("value", ["999999", "abc", "٣"])
def test_a_channel_that_is_not_offered_is_refused_and_nothing_changes(console_client, value):
    customer = CustomerFactory()
    ChannelFactory(kind=Channel.Kind.EMAIL, is_active=False, pk=999999)

    response = save(console_client, customer, preferred_channel=value)

    assert response.status_code == 400
    assert "Choose one of the channels listed." in response.content.decode()
    assert Customer.objects.get(pk=customer.pk).preferred_channel_id is None
    assert not EmailSubscription.objects.exists()


def test_without_htmx_the_save_returns_to_the_profile(console_client):
    customer = CustomerFactory()

    response = save(console_client, customer, htmx=False, email_notice="on", email_incident="on")

    assert (response.status_code, response.headers["Location"]) == (302, profile_url(customer))
    assert "Contact preferences saved" in console_client.get(profile_url(customer)).content.decode()
    assert EmailSubscription.objects.get().purpose == "survey"


def test_the_form_needs_a_signed_in_agent():
    customer = CustomerFactory()
    response = Client().post(form_url(customer), data={"email_notice": "on"})

    assert response.status_code in (302, 403)
    assert not EmailSubscription.objects.exists()
