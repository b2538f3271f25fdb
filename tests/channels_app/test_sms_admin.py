"""Configuring an SMS channel: its sender validated and normalised (API, service and Django admin), and the admin's
"Check connection / send a test SMS" page, against Twilio's REST API mocked with ``responses``."""

import json
from urllib.parse import parse_qs

import pytest
import responses
from django.urls import reverse

from channels_app.models import Channel, SmsOptOut
from channels_app.services.channels import channel_create, channel_update
from helpdesk.errors import DomainError
from tests.channels_app.sms_fixtures import ACCOUNT_SID, CHANNEL_NUMBER, sms_channel_create, sms_rate_buckets_clear
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

ACCOUNT_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}.json"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
SERVICE_SID = "MG9752274e9e519418a7406176694466fa"
TEST_SID = "SM2e1a6c4f0b8f4b7e9d0c3a5b6e7f8a9b"


@pytest.fixture(autouse=True)
def free_send_slots():
    sms_rate_buckets_clear()


@pytest.fixture
def admin_browser(client, admin_user):
    assert client.login(username=admin_user.username, password="correct-horse-battery")
    return client


def twilio_account(**fields) -> dict:
    """Twilio's Account resource, as GET /2010-04-01/Accounts/{sid}.json returns it."""
    return {
        "auth_token": "redacted",
        "date_created": "Thu, 01 Feb 2024 10:00:00 +0000",
        "date_updated": "Thu, 01 Feb 2024 10:00:00 +0000",
        "friendly_name": "Desk Support",
        "owner_account_sid": ACCOUNT_SID,
        "sid": ACCOUNT_SID,
        "status": "active",
        "subresource_uris": {"messages": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"},
        "type": "Full",
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}.json",
        **fields,
    }


def twilio_created(to: str) -> dict:
    return {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": "Test",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": CHANNEL_NUMBER,
        "num_segments": "1",
        "sid": TEST_SID,
        "status": "queued",
        "to": to,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{TEST_SID}.json",
    }


def check_url(channel: Channel) -> str:
    return reverse("admin:channels_app_channel_sms_check", args=[channel.pk])


def shown_messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in response.context["messages"]]


# --- The sender, validated ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "extra_settings", "stored"),
    [
        ("(415) 555-0100", {"phone_region": "US"}, "+14155550100"),
        ("020 7946 0958", {"phone_region": "GB"}, "+442079460958"),
        ("", {"messaging_service_sid": SERVICE_SID}, ""),
    ],
)
def test_an_sms_channel_is_created_with_its_sender_normalised(address, extra_settings, stored):
    channel = channel_create(kind="sms", name="Texts", address=address, settings=extra_settings)

    assert channel.address == stored
    assert channel.settings == extra_settings


def test_further_numbers_of_a_messaging_service_are_normalised():
    channel = channel_create(
        kind="sms",
        name="Texts",
        settings={"messaging_service_sid": SERVICE_SID, "numbers": ["(415) 555-0101", "+1 415 555 0102"]},
    )

    assert channel.settings["numbers"] == ["+14155550101", "+14155550102"]


@pytest.mark.parametrize(
    ("address", "extra_settings", "code", "detail"),
    [
        ("", {}, "sms_sender_missing", "An SMS channel sends from its number"),
        ("call us", {}, "invalid_address", "address: not a phone number"),
        ("", {"messaging_service_sid": "MG123"}, "invalid_settings", "settings.messaging_service_sid:"),
        (CHANNEL_NUMBER, {"numbers": "+14155550101"}, "invalid_settings", "settings.numbers:"),
        (CHANNEL_NUMBER, {"numbers": ["nope"]}, "invalid_address", "settings.numbers: not a phone number"),
        (CHANNEL_NUMBER, {"send_rate_per_second": 0}, "invalid_settings", "settings.send_rate_per_second:"),
        (CHANNEL_NUMBER, {"send_rate_per_second": "fast"}, "invalid_settings", "settings.send_rate_per_second:"),
        (CHANNEL_NUMBER, {"phone_region": "United States"}, "invalid_settings", "settings.phone_region:"),
    ],
)
def test_an_unusable_sms_configuration_is_refused_with_a_clear_error(address, extra_settings, code, detail):
    with pytest.raises(DomainError) as refused:
        channel_create(kind="sms", name="Texts", address=address, settings=extra_settings)

    assert refused.value.code == code
    assert refused.value.detail.startswith(detail)
    assert not Channel.objects.exists()


def test_removing_the_number_of_a_channel_without_a_messaging_service_is_refused():
    channel = channel_create(kind="sms", name="Texts", address=CHANNEL_NUMBER)

    with pytest.raises(DomainError) as refused:
        channel_update(channel=channel, address="")

    assert refused.value.code == "sms_sender_missing"
    channel.refresh_from_db()
    assert channel.address == CHANNEL_NUMBER


def test_the_api_refuses_an_sms_channel_without_a_sender(admin_client):
    response = admin_client.post("/api/v1/channels", {"kind": "sms", "name": "Texts"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "sms_sender_missing"
    assert not Channel.objects.exists()


def test_the_admin_form_normalises_the_number(admin_browser):
    response = admin_browser.post(
        reverse("admin:channels_app_channel_add"),
        {
            "kind": "sms",
            "provider": "twilio",
            "name": "Texts",
            "address": "(415) 555-0100",
            "settings": json.dumps({"phone_region": "US"}),
            "continue_open_ticket": "on",
            "is_active": "on",
            "new_secrets": json.dumps({"account_sid": ACCOUNT_SID, "auth_token": "t"}),
        },
    )

    assert response.status_code == 302
    assert Channel.objects.get().address == "+14155550100"


def test_the_admin_form_shows_what_is_wrong(admin_browser):
    response = admin_browser.post(
        reverse("admin:channels_app_channel_add"),
        {"kind": "sms", "provider": "twilio", "name": "Texts", "address": "", "settings": "{}", "is_active": "on"},
    )

    assert response.status_code == 200
    assert "An SMS channel sends from its number" in response.content.decode()
    assert not Channel.objects.exists()


# --- Check connection / send a test SMS -----------------------------------------------------------------------


def test_the_change_page_of_an_sms_channel_offers_the_check(admin_browser):
    sms = sms_channel_create()
    email = ChannelFactory(kind=Channel.Kind.EMAIL, address="help@desk.example")

    sms_page = admin_browser.get(reverse("admin:channels_app_channel_change", args=[sms.pk]))
    email_page = admin_browser.get(reverse("admin:channels_app_channel_change", args=[email.pk]))

    assert check_url(sms) in sms_page.content.decode()
    assert "sms-check" not in email_page.content.decode()
    assert admin_browser.get(f"/admin/channels_app/channel/{email.pk}/sms-check/").status_code == 404


@responses.activate
def test_the_check_proves_the_credentials_by_fetching_the_account(admin_browser):
    channel = sms_channel_create()
    responses.get(ACCOUNT_URL, json=twilio_account(friendly_name="Desk Support"))

    response = admin_browser.post(check_url(channel), {"test_number": ""}, follow=True)

    assert shown_messages(response) == [("success", "Connected to the Twilio account 'Desk Support' (active).")]
    [call] = responses.calls
    assert call.request.method == "GET"


@responses.activate
def test_the_check_sends_a_test_message_to_the_number_given(admin_browser):
    channel = sms_channel_create()
    responses.get(ACCOUNT_URL, json=twilio_account())
    responses.post(MESSAGES_URL, json=twilio_created("+14155550177"), status=201)

    response = admin_browser.post(check_url(channel), {"test_number": "(415) 555-0177"}, follow=True)

    assert shown_messages(response) == [
        (
            "success",
            f"Connected to the Twilio account 'Desk Support' (active). Test message accepted by Twilio as {TEST_SID}.",
        )
    ]
    form = parse_qs(responses.calls[1].request.body)
    assert form == {
        "To": ["+14155550177"],
        "From": [CHANNEL_NUMBER],
        "Body": ["Test message from the help desk channel Texts."],
    }


@responses.activate
def test_wrong_credentials_show_twilios_error(admin_browser):
    channel = sms_channel_create()
    responses.get(
        ACCOUNT_URL,
        json={"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003"},
        status=401,
    )

    response = admin_browser.post(check_url(channel), {"test_number": "+14155550177"}, follow=True)

    assert shown_messages(response) == [("error", "Twilio refused the credentials: error 20003: Authenticate")]
    assert len(responses.calls) == 1


@responses.activate
def test_a_refused_test_message_shows_twilios_error(admin_browser):
    channel = sms_channel_create()
    responses.get(ACCOUNT_URL, json=twilio_account())
    responses.post(
        MESSAGES_URL,
        json={"code": 21408, "message": "Permission to send an SMS has not been enabled for the region", "status": 400},
        status=400,
    )

    response = admin_browser.post(check_url(channel), {"test_number": "+442079460958"}, follow=True)

    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert text == (
        "The credentials work, but Twilio refused the test message: "
        "error 21408: Permission to send an SMS has not been enabled for the region"
    )


@responses.activate
def test_a_channel_without_credentials_says_so_without_calling_twilio(admin_browser):
    channel = sms_channel_create(secrets={})

    response = admin_browser.post(check_url(channel), {"test_number": ""}, follow=True)

    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert "has no Twilio account_sid and auth_token" in text
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    ("number", "error"),
    [("call me", "Not a usable phone number"), ("+14155550100", "This number opted out of SMS")],
)
@responses.activate
def test_an_unusable_test_number_is_refused_before_calling_twilio(admin_browser, number, error):
    channel = sms_channel_create()
    SmsOptOut.objects.create(phone="+14155550100", keyword="STOP")

    response = admin_browser.post(check_url(channel), {"test_number": number})

    assert response.status_code == 200
    assert error in response.content.decode()
    assert len(responses.calls) == 0


def test_the_check_page_is_for_admins_only(client, agent):
    channel = sms_channel_create()
    assert client.login(username=agent.username, password="correct-horse-battery")

    response = client.post(check_url(channel), {"test_number": ""})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_check_page_asks_for_an_optional_number(admin_browser):
    channel = sms_channel_create()

    response = admin_browser.get(check_url(channel))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="test_number"' in page
    assert "Fetches the Twilio account with the credentials stored for Texts" in page
