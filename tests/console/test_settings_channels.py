"""Settings: channels (email, SMS, chat) created and edited from the console, errors next to their fields, secrets
write-only, stale forms refused, and the connection tests against a real Dovecot, a real SMTP peer and Twilio's REST
API mocked with ``responses``."""

import pytest
import responses
from django.test import Client
from django.urls import reverse

from channels_app.models import Channel, ImapMailboxState, SmsOptOut
from tests.channels_app.conftest import IMAP_USERS, dovecot  # noqa: F401  (the real Dovecot, session-wide)
from tests.channels_app.imap_server import free_port
from tests.channels_app.sms_fixtures import ACCOUNT_SID, AUTH_TOKEN, CHANNEL_NUMBER, sms_rate_buckets_clear
from tests.channels_app.smtp_peer import smtp  # noqa: F401  (the real SMTP peer)
from tests.console.conftest import csrf_token
from tests.factories import ChannelFactory, TeamFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/console/settings/channels/"
ACCOUNT_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}.json"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
IMAP_PASSWORD = IMAP_USERS["desk"]


def create_url(kind: str) -> str:
    return reverse("console:settings-channel-create", args=[kind])


def edit_url(channel: Channel) -> str:
    return reverse("console:settings-channel-edit", args=[channel.pk])


def check_url(channel: Channel) -> str:
    return reverse("console:settings-channel-test", args=[channel.pk])


def post(client: Client, url: str, data: dict, *, form_url: str | None = None):
    """POST as the browser does: with the CSRF token of the page the form is on."""
    token = csrf_token(client, form_url or url)
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def field_errors(response, field: str) -> list[str]:
    return [str(error) for error in response.context["form"].errors.get(field, [])]


def email_data(**overrides) -> dict:
    data = {
        "name": "Support",
        "address": "support@desk.example",
        "is_active": "on",
        "imap_host": "",
        "imap_security": "ssl",
        "imap_folder": "INBOX",
        "smtp_host": "",
        "smtp_security": "starttls",
    }
    data.update(overrides)
    return data


def sms_data(**overrides) -> dict:
    data = {
        "name": "Texts",
        "address": "(415) 555-0199",
        "phone_region": "us",
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "is_active": "on",
    }
    data.update(overrides)
    return data


def chat_data(**overrides) -> dict:
    data = {"name": "Shop chat", "allowed_origins": "https://Shop.example\nhttp://localhost:8000", "is_active": "on"}
    data.update(overrides)
    return data


# --- Who may see the pages ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/console/settings/", LIST_URL, "/console/settings/channels/new/email/"])
def test_agents_get_403_and_admins_200(console_client, console_admin_client, url):
    assert console_client.get(url).status_code == 403
    assert console_admin_client.get(url).status_code == 200


def test_anonymous_visitors_are_sent_to_sign_in():
    response = Client().get(LIST_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/?next=")


def test_an_agent_cannot_post_a_channel(console_client):
    response = console_client.post(create_url("email"), email_data())

    assert response.status_code == 403
    assert not Channel.objects.exists()


def test_the_settings_page_links_to_the_django_admin(console_admin_client):
    page = console_admin_client.get("/console/settings/").content.decode()

    assert 'href="/admin/"' in page


# --- List ---------------------------------------------------------------------------------------------------------


def test_the_list_shows_every_channel_with_names_escaped(console_admin_client):
    ChannelFactory(kind=Channel.Kind.EMAIL, name="<script>alert(1)</script>", address="a@desk.example")
    ChannelFactory(kind=Channel.Kind.API, name="Shop API", is_active=False)

    page = console_admin_client.get(LIST_URL).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a@desk.example" in page
    assert "Shop API" in page


@pytest.mark.parametrize("size", [2, 12])
def test_the_list_costs_the_same_queries_whatever_the_number_of_channels(
    console_admin_client, django_assert_num_queries, size
):
    team = TeamFactory()
    for number in range(size):
        channel = ChannelFactory(kind=Channel.Kind.EMAIL, address=f"box{number}@desk.example", default_team=team)
        ImapMailboxState.objects.create(channel=channel, folder="INBOX", consecutive_failures=number % 2)
    console_admin_client.get(LIST_URL)  # session and user loaded once, as in a browser

    with django_assert_num_queries(4):
        response = console_admin_client.get(LIST_URL)

    assert response.content.decode().count("data-channel-id=") == size


# --- Email --------------------------------------------------------------------------------------------------------


def test_an_admin_creates_a_mailbox_with_imap_settings_and_the_password_stays_secret(console_admin_client):
    response = post(
        console_admin_client,
        create_url("email"),
        email_data(
            imap_host="imap.desk.example",
            imap_port="993",
            imap_username="desk",
            imap_password="s3cret-imap",
            imap_folder="Support",
        ),
    )

    assert response.status_code == 302
    channel = Channel.objects.get()
    assert channel.kind == "email"
    assert channel.address == "support@desk.example"
    assert channel.settings == {
        "imap_host": "imap.desk.example",
        "imap_port": 993,
        "imap_ssl": True,
        "imap_username": "desk",
        "imap_folder": "Support",
    }
    assert channel.secrets == {"imap_password": "s3cret-imap"}
    page = console_admin_client.get(edit_url(channel)).content.decode()
    assert "s3cret-imap" not in page
    assert 'data-secret="imap_password">set<' in page
    assert 'data-secret="smtp_password">not set<' in page


def test_a_bad_mailbox_address_is_shown_next_to_its_field(console_admin_client):
    response = post(console_admin_client, create_url("email"), email_data(address="not an address"))

    assert response.status_code == 400
    assert field_errors(response, "address") == ["Enter a valid email address."]
    assert 'id="id_address_error"' in response.content.decode()
    assert not Channel.objects.exists()


def test_imap_without_a_password_is_refused_next_to_the_password(console_admin_client):
    response = post(console_admin_client, create_url("email"), email_data(imap_host="imap.example", imap_username="u"))

    assert response.status_code == 400
    assert field_errors(response, "imap_password") == ["Required to poll the mailbox."]
    assert not Channel.objects.exists()


def test_a_taken_address_is_refused_next_to_the_address(console_admin_client):
    ChannelFactory(kind=Channel.Kind.EMAIL, address="support@desk.example")

    response = post(console_admin_client, create_url("email"), email_data())

    assert response.status_code == 400
    assert field_errors(response, "address") == ["Another channel of this kind already has this address."]
    assert Channel.objects.count() == 1


def test_saving_without_retyping_a_secret_keeps_it_and_keeps_unknown_settings(console_admin_client):
    channel = ChannelFactory(
        kind=Channel.Kind.EMAIL,
        name="Support",
        address="support@desk.example",
        settings={"imap_host": "imap.example", "imap_username": "desk", "imap_batch_size": 10},
        secrets={"imap_password": "kept-password"},
    )
    form = console_admin_client.get(edit_url(channel)).context["form"]

    response = post(
        console_admin_client,
        edit_url(channel),
        email_data(
            name="Support desk",
            imap_host="imap.example",
            imap_username="desk",
            imap_security="starttls",
            updated_at=form.initial["updated_at"],
        ),
    )

    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Support desk"
    assert channel.secrets == {"imap_password": "kept-password"}
    assert channel.settings["imap_batch_size"] == 10
    assert channel.settings["imap_starttls"] is True
    assert "imap_ssl" not in channel.settings


def test_a_stale_channel_form_is_refused_with_the_current_values(console_admin_client):
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, name="Support", address="support@desk.example")
    opened = console_admin_client.get(edit_url(channel)).context["form"].initial["updated_at"]
    Channel.objects.filter(pk=channel.pk).update(name="Renamed meanwhile")  # updated_at is not touched by update()
    channel.refresh_from_db()
    channel.save()  # another admin's save moves updated_at

    response = post(console_admin_client, edit_url(channel), email_data(name="Mine", updated_at=opened))

    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()
    assert 'value="Renamed meanwhile"' in response.content.decode()
    channel.refresh_from_db()
    assert channel.name == "Renamed meanwhile"


def test_posting_without_the_csrf_token_is_refused(console_admin_client):
    response = console_admin_client.post(create_url("email"), email_data())

    assert response.status_code == 403
    assert not Channel.objects.exists()


# --- SMS ----------------------------------------------------------------------------------------------------------


def test_an_admin_creates_an_sms_number_normalised_with_write_only_credentials(console_admin_client):
    response = post(console_admin_client, create_url("sms"), sms_data())

    assert response.status_code == 302
    channel = Channel.objects.get()
    assert (channel.kind, channel.provider, channel.address) == ("sms", "twilio", CHANNEL_NUMBER)
    assert channel.settings == {"phone_region": "US"}
    assert channel.secrets == {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    page = console_admin_client.get(edit_url(channel)).content.decode()
    assert AUTH_TOKEN not in page
    assert ACCOUNT_SID not in page


@pytest.mark.parametrize(
    ("overrides", "field", "error"),
    [
        ({"address": "call us"}, "address", "Not a phone number"),
        ({"address": ""}, "__all__", "An SMS channel sends from its number"),
        ({"messaging_service_sid": "MG123"}, "messaging_service_sid", "A Twilio Messaging Service SID"),
        ({"phone_region": "USA"}, "phone_region", "Ensure this value has at most 2 characters"),
        ({"account_sid": "AC12"}, "account_sid", "A Twilio Account SID"),
        ({"auth_token": ""}, "auth_token", "Required to send and check messages."),
    ],
)
def test_bad_sms_settings_are_shown_next_to_their_field(console_admin_client, overrides, field, error):
    response = post(console_admin_client, create_url("sms"), sms_data(**overrides))

    assert response.status_code == 400
    errors = response.context["form"].errors.get(field, [])
    assert any(message.startswith(error) for message in errors), errors
    assert not Channel.objects.exists()


# --- Chat ---------------------------------------------------------------------------------------------------------


def test_an_admin_creates_a_chat_widget_with_its_settings(console_admin_client):
    mailbox = ChannelFactory(kind=Channel.Kind.EMAIL, address="support@desk.example")

    response = post(
        console_admin_client,
        create_url("chat"),
        chat_data(
            color="#0055ff",
            greeting="Hi <b>there</b>",
            pre_chat_form="on",
            expected_reply_minutes="5",
            email_channel=str(mailbox.pk),
            time_zone="Europe/Paris",
            hours_mon="9:00-12:00, 13:00-17:00",
            hours_sat="10:00-14:00",
        ),
    )

    assert response.status_code == 302
    channel = Channel.objects.get(kind=Channel.Kind.CHAT)
    assert channel.settings == {
        "allowed_origins": ["https://shop.example", "http://localhost:8000"],
        "color": "#0055ff",
        "greeting": "Hi <b>there</b>",
        "pre_chat_form": True,
        "expected_reply_minutes": 5,
        "email_channel_id": mailbox.pk,
        "business_hours": {
            "time_zone": "Europe/Paris",
            "days": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [["10:00", "14:00"]]},
        },
    }
    page = console_admin_client.get(edit_url(channel)).content.decode()
    assert "Hi &lt;b&gt;there&lt;/b&gt;" in page
    assert 'value="09:00-12:00, 13:00-17:00"' in page


@pytest.mark.parametrize(
    ("overrides", "field", "error"),
    [
        ({"allowed_origins": "https://shop.example/path"}, "allowed_origins", "'https://shop.example/path' is not an"),
        ({"allowed_origins": "shop.example"}, "allowed_origins", "'shop.example' is not an origin"),
        ({"color": "blue"}, "color", "A colour as #RRGGBB"),
        ({"time_zone": "Mars/Olympus", "hours_mon": "09:00-17:00"}, "time_zone", "An IANA time zone"),
        ({"time_zone": "UTC", "hours_tue": "17:00-09:00"}, "hours_tue", "Ranges like"),
        ({"time_zone": "UTC", "hours_tue": "all day"}, "hours_tue", "'all day': a range like 09:00-17:00."),
        ({"hours_tue": "09:00-17:00"}, "time_zone", "Required with business hours."),
    ],
)
def test_bad_chat_settings_are_shown_next_to_their_field(console_admin_client, overrides, field, error):
    response = post(console_admin_client, create_url("chat"), chat_data(**overrides))

    assert response.status_code == 400
    errors = response.context["form"].errors.get(field, [])
    assert any(message.startswith(error) for message in errors), response.context["form"].errors
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not Channel.objects.exists()


def test_the_chat_test_page_shows_the_embed_snippet_and_checks_the_origins(console_admin_client):
    channel = ChannelFactory(kind=Channel.Kind.CHAT, settings={"allowed_origins": ["https://shop.example"]})
    empty = ChannelFactory(kind=Channel.Kind.CHAT, settings={"allowed_origins": []})

    page = console_admin_client.get(check_url(channel)).content.decode()
    empty_page = console_admin_client.get(check_url(empty)).content.decode()

    assert f"data-channel=&quot;{channel.public_key}&quot;" in page  # the snippet, shown as text
    assert "/static/chat/widget.js" in page
    assert 'data-ok="true"' in page and "https://shop.example" in page
    assert 'data-ok="false"' in empty_page and "No allowed origin" in empty_page


# --- Connection tests: email --------------------------------------------------------------------------------------


@pytest.fixture
def imap_mailbox(dovecot):  # noqa: F811
    def make(**settings_overrides):
        settings = {
            "imap_host": "127.0.0.1",
            "imap_port": dovecot.port,
            "imap_ssl": False,
            "imap_username": "desk",
            **settings_overrides,
        }
        return ChannelFactory(
            kind=Channel.Kind.EMAIL,
            name="Support",
            address="support@desk.example",
            settings=settings,
            secrets={"imap_password": IMAP_PASSWORD},
        )

    return make


def run_check(client: Client, channel: Channel, data: dict):
    return post(client, check_url(channel), data)


def test_the_imap_check_logs_in_to_the_real_server_and_opens_the_folder(console_admin_client, imap_mailbox):
    channel = imap_mailbox()

    response = run_check(console_admin_client, channel, {"check": "imap"})

    assert response.status_code == 200
    result = response.context["result"]
    assert result.is_ok, result.text
    assert result.text.startswith("Logged in to 127.0.0.1:")
    assert "folder INBOX has" in result.text
    assert 'data-ok="true"' in response.content.decode()


def test_the_imap_check_shows_a_refused_login(console_admin_client, imap_mailbox, dovecot):  # noqa: F811
    channel = imap_mailbox()
    channel.secrets = {"imap_password": "wrong-password"}
    channel.save()

    response = run_check(console_admin_client, channel, {"check": "imap"})

    assert response.status_code == 200
    result = response.context["result"]
    assert not result.is_ok
    assert result.text.startswith(f"127.0.0.1:{dovecot.port} refused the login of desk")
    assert "wrong-password" not in response.content.decode()


def test_the_imap_check_shows_a_missing_folder(console_admin_client, imap_mailbox):
    channel = imap_mailbox(imap_folder="No-Such-Folder")

    result = run_check(console_admin_client, channel, {"check": "imap"}).context["result"]

    assert not result.is_ok
    assert result.text.startswith("Logged in, but the folder No-Such-Folder cannot be opened")


def test_the_imap_check_shows_an_unreachable_server(console_admin_client, imap_mailbox):
    channel = imap_mailbox(imap_port=free_port())

    response = run_check(console_admin_client, channel, {"check": "imap"})

    assert response.status_code == 200
    assert response.context["result"].text.startswith("Could not talk to the IMAP server 127.0.0.1:")
    assert "ConnectionRefusedError" in response.context["result"].text


def smtp_mailbox(port: int) -> Channel:
    return ChannelFactory(
        kind=Channel.Kind.EMAIL,
        name="Support",
        address="support@desk.example",
        settings={
            "email_backend": "django.core.mail.backends.smtp.EmailBackend",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
        },
    )


def test_the_smtp_check_sends_a_test_email_to_the_real_peer(console_admin_client, smtp):  # noqa: F811
    channel = smtp_mailbox(smtp.port)

    response = run_check(console_admin_client, channel, {"check": "smtp", "recipient": "admin@example.com"})

    assert response.status_code == 200
    assert response.context["result"].is_ok, response.context["result"].text
    [received] = smtp.received
    assert received.rcpt_tos == ["admin@example.com"]
    assert received.mail_from == "support@desk.example"
    assert received.message["Subject"] == "Test message from the help desk channel Support"


def test_the_smtp_check_shows_the_servers_refusal(console_admin_client, smtp):  # noqa: F811
    smtp.rcpt_replies = ["550 5.1.1 No such user here"]
    channel = smtp_mailbox(smtp.port)

    response = run_check(console_admin_client, channel, {"check": "smtp", "recipient": "nobody@example.com"})

    result = response.context["result"]
    assert response.status_code == 200
    assert not result.is_ok
    assert result.text == f"The mail server (127.0.0.1:{smtp.port}) refused the recipient: 550 5.1.1 No such user here"
    assert smtp.received == []


def test_the_smtp_check_needs_a_recipient(console_admin_client, smtp):  # noqa: F811
    channel = smtp_mailbox(smtp.port)

    response = run_check(console_admin_client, channel, {"check": "smtp", "recipient": ""})

    assert response.status_code == 400
    assert field_errors(response, "recipient") == ["Where should the test email go?"]
    assert smtp.received == []


# --- Connection tests: SMS ----------------------------------------------------------------------------------------


@pytest.fixture
def sms_channel():
    sms_rate_buckets_clear()
    return ChannelFactory(
        kind=Channel.Kind.SMS,
        provider="twilio",
        name="Texts",
        address=CHANNEL_NUMBER,
        settings={"phone_region": "US"},
        secrets={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
    )


def twilio_account() -> dict:
    return {"sid": ACCOUNT_SID, "friendly_name": "Desk Support", "status": "active", "type": "Full"}


@responses.activate
def test_the_sms_check_fetches_the_account_and_sends_a_test_sms(console_admin_client, sms_channel):
    responses.get(ACCOUNT_URL, json=twilio_account())
    responses.post(MESSAGES_URL, json={"sid": "SM" + "a" * 32, "status": "queued", "to": "+14155550100"}, status=201)

    response = run_check(console_admin_client, sms_channel, {"test_number": "(415) 555-0100"})

    assert response.status_code == 200
    assert response.context["result"].text == (
        "Connected to the Twilio account 'Desk Support' (active). Test message accepted by Twilio as SM"
        + "a" * 32
        + "."
    )
    assert [call.request.method for call in responses.calls] == ["GET", "POST"]
    assert "To=%2B14155550100" in responses.calls[1].request.body


@responses.activate
def test_the_sms_check_shows_twilios_refusal(console_admin_client, sms_channel):
    responses.get(
        ACCOUNT_URL, status=401, json={"code": 20003, "message": "Authenticate", "status": 401, "more_info": ""}
    )

    response = run_check(console_admin_client, sms_channel, {"test_number": ""})

    assert response.status_code == 200
    result = response.context["result"]
    assert not result.is_ok
    assert result.text == "Twilio refused the credentials: error 20003: Authenticate"
    assert AUTH_TOKEN not in response.content.decode()


@responses.activate
def test_the_sms_check_refuses_a_bad_number_without_calling_twilio(console_admin_client, sms_channel):
    SmsOptOut.objects.create(phone="+14155550100", keyword="STOP")

    bad = run_check(console_admin_client, sms_channel, {"test_number": "call me"})
    opted_out = run_check(console_admin_client, sms_channel, {"test_number": "+14155550100"})

    assert bad.status_code == 400
    assert field_errors(bad, "test_number")[0].startswith("Not a usable phone number")
    assert opted_out.status_code == 400
    assert field_errors(opted_out, "test_number")[0].startswith("This number opted out of SMS")
    assert len(responses.calls) == 0
