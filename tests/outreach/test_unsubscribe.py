"""The unsubscribe page of desk-started email: GET only asks (mail scanners fetch links), POST unsubscribes once
(RFC 8058 one-click, no CSRF token possible), a bad or expired signature changes nothing and explains itself."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import EmailSubscription
from outreach.services.send import outreach_send
from outreach.unsubscribe import unsubscribe_token
from tests.factories import CustomerFactory
from tests.outreach.conftest import template_create
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    # As a mail client's one-click POST arrives: no session, no CSRF cookie, the check enforced.
    return Client(enforce_csrf_checks=True)


def url_for(customer, purpose="survey") -> str:
    token = unsubscribe_token(customer_id=customer.pk, purpose=purpose)
    return reverse("outreach:unsubscribe", kwargs={"token": token})


def changes() -> list[dict]:
    events = TimelineEvent.objects.filter(type=TimelineEvent.Type.EMAIL_SUBSCRIPTION_CHANGED)
    return list(events.values_list("params", flat=True))


def test_get_shows_a_confirmation_and_changes_nothing(client):
    customer = CustomerFactory()

    response = client.get(url_for(customer))

    assert response.status_code == 200
    assert b"Stop surveys by email?" in response.content
    assert b'<button type="submit">Unsubscribe</button>' in response.content
    assert not EmailSubscription.objects.exists()
    assert changes() == []


def test_one_click_post_unsubscribes_once_however_often_it_comes(client):
    customer = CustomerFactory()
    url = url_for(customer)

    first = client.post(url, data={"List-Unsubscribe": "One-Click"})
    second = client.post(url, data={"List-Unsubscribe": "One-Click"})

    assert (first.status_code, second.status_code) == (200, 200)
    assert b"You are unsubscribed" in first.content
    subscription = EmailSubscription.objects.get()
    assert (subscription.customer_id, subscription.purpose, subscription.is_subscribed, subscription.source) == (
        customer.pk,
        "survey",
        False,
        "unsubscribe_link",
    )
    assert changes() == [{"purpose": "survey", "is_subscribed": False, "source": "unsubscribe_link"}]
    # The page afterwards says so instead of offering the button again
    assert b"You are already unsubscribed" in client.get(url).content


def test_a_merged_customers_link_unsubscribes_the_customer_they_became(client):
    target = CustomerFactory()
    source = CustomerFactory(merged_into=target)

    client.post(url_for(source))

    assert EmailSubscription.objects.get().customer_id == target.pk


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_link_shows_a_friendly_page_and_changes_nothing(client, method):
    customer = CustomerFactory()
    url = url_for(customer)[:-4] + "xyz/"

    response = getattr(client, method)(url)

    assert response.status_code == 400
    assert b"This link does not work" in response.content and b"Nothing was changed." in response.content
    assert not EmailSubscription.objects.exists()


def test_a_link_signed_for_another_use_is_refused(client):
    customer = CustomerFactory()
    token = signing.dumps({"c": customer.pk, "p": "survey"}, salt="something.else")

    response = client.post(reverse("outreach:unsubscribe", kwargs={"token": token}))

    assert response.status_code == 400
    assert not EmailSubscription.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_expired_link_says_so_and_changes_nothing(client, settings, method):
    customer = CustomerFactory()
    url = url_for(customer)
    later = timezone.now() + timedelta(days=settings.HELPDESK["OUTREACH_UNSUBSCRIBE_MAX_AGE_DAYS"], minutes=1)

    with time_machine.travel(later):
        response = getattr(client, method)(url)

    assert response.status_code == 400
    assert b"This link has expired" in response.content
    assert not EmailSubscription.objects.exists()


def test_a_link_for_a_purpose_that_does_not_exist_is_refused(client):
    customer = CustomerFactory()

    response = client.post(url_for(customer, purpose="reply"))

    assert response.status_code == 400
    assert not EmailSubscription.objects.exists()


def test_an_unsubscribed_purpose_is_not_emailed_again(client, mailbox):
    customer = CustomerFactory()
    customer.identities.create(kind="email", value="bo@example.com")
    client.post(url_for(customer, purpose="survey"))

    result = outreach_send(
        customer=customer,
        purpose="survey",
        template=template_create("survey"),
        context={"survey.url": "https://desk.example/s/2"},
        channel_preference=[mailbox],
        key="survey:after-unsubscribe",
    )

    assert (result.status, result.reason) == ("skipped", "email_unsubscribed")
