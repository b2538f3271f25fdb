"""Channel secrets: encrypted at rest, write-only in the API and the Django admin, never in logs or reprs."""

import json
import logging

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from channels_app import secrets as channel_secrets
from channels_app.models import Channel, Delivery
from channels_app.services.channels import channel_create
from channels_app.services.delivery_send import delivery_send
from customers.models import CustomerIdentity
from tests.channels_app.callback_server import CallbackServer
from tests.factories import AgentFactory, CustomerFactory, TicketFactory
from tickets.services.replies import reply_create

pytestmark = pytest.mark.django_db

CALLBACK_SECRET = "whsec-9d1b7e2c44"
API_KEY = "key-51f0aa83c2"
SECRETS = {"callback_secret": CALLBACK_SECRET, "api_key": API_KEY}


def raw_secrets_column(channel: Channel) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM channels_app_channel WHERE id = %s", [channel.pk])
        return cursor.fetchone()[0]


def assert_no_secret_in(text: str | bytes) -> None:
    if isinstance(text, bytes):
        text = text.decode()
    assert CALLBACK_SECRET not in text
    assert API_KEY not in text


@pytest.fixture
def fresh_fernet():
    """The key set is cached per process; tests that change SECRETS_ENCRYPTION_KEYS start and end uncached."""
    channel_secrets._fernet.cache_clear()
    yield
    channel_secrets._fernet.cache_clear()


def test_secrets_are_stored_encrypted_and_read_back_decrypted():
    # When a channel is created with secrets
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)

    # Then the database column holds a Fernet token, not the values nor even the key names
    raw = raw_secrets_column(channel)
    assert raw.startswith("gAAAAA")
    assert_no_secret_in(raw)
    assert "callback_secret" not in raw
    # And the model gives them back decrypted
    assert Channel.objects.get(pk=channel.pk).secrets == SECRETS
    assert Channel.objects.get(pk=channel.pk).secret_names == ["api_key", "callback_secret"]


def test_a_channel_without_secrets_reads_back_as_an_empty_dict():
    channel = channel_create(kind="api", name="Shop")

    assert Channel.objects.get(pk=channel.pk).secrets == {}
    assert Channel.objects.get(pk=channel.pk).secret_names == []


def test_rotated_keys_still_decrypt_and_new_writes_use_the_first_key(settings, fresh_fernet):
    # Given a channel encrypted with the old key
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEYS = [old_key]
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)

    # When a new key is put first
    settings.SECRETS_ENCRYPTION_KEYS = [new_key, old_key]
    channel_secrets._fernet.cache_clear()

    # Then the old value still decrypts, and a save encrypts with the new key only
    channel = Channel.objects.get(pk=channel.pk)
    assert channel.secrets == SECRETS
    channel.save()
    assert json.loads(Fernet(new_key.encode()).decrypt(raw_secrets_column(channel).encode())) == SECRETS


def test_secrets_encrypted_with_an_unknown_key_fail_loudly(settings, fresh_fernet):
    settings.SECRETS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)
    settings.SECRETS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    channel_secrets._fernet.cache_clear()

    with pytest.raises(ValueError, match="cannot be decrypted with the configured keys"):
        Channel.objects.get(pk=channel.pk)


def test_repr_and_str_of_a_channel_hold_no_secret():
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)

    assert repr(channel) == f"<Channel {channel.pk} api 'Shop'>"
    assert str(channel) == "Shop (API)"
    assert_no_secret_in(repr(Channel.objects.get(pk=channel.pk)))


# --- The REST API for admins ---------------------------------------------------------------------------------


def test_api_create_read_and_list_never_show_secret_values(admin_client):
    # When an admin creates a channel with secrets, reads it and lists channels
    created = admin_client.post("/api/v1/channels", {"kind": "api", "name": "Shop", "secrets": SECRETS}, format="json")
    channel = Channel.objects.get()
    detail = admin_client.get(f"/api/v1/channels/{channel.pk}")
    listed = admin_client.get("/api/v1/channels")

    # Then the secrets are stored, and no answer contains a value: only their names
    assert created.status_code == 201
    assert detail.status_code == listed.status_code == 200
    assert channel.secrets == SECRETS
    for response in (created, detail, listed):
        assert_no_secret_in(response.content)
    assert "secrets" not in created.json()
    assert created.json()["secret_names"] == detail.json()["secret_names"] == ["api_key", "callback_secret"]
    assert [body["secret_names"] for body in listed.json()] == [["api_key", "callback_secret"]]


def test_api_patch_merges_secret_keys_and_null_removes_one(admin_client):
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)

    response = admin_client.patch(
        f"/api/v1/channels/{channel.pk}",
        {"secrets": {"api_key": None, "signing_key": "sk-new-4411"}},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["secret_names"] == ["callback_secret", "signing_key"]
    assert b"sk-new-4411" not in response.content
    assert_no_secret_in(response.content)
    channel.refresh_from_db()
    assert channel.secrets == {"callback_secret": CALLBACK_SECRET, "signing_key": "sk-new-4411"}


def test_api_patch_of_other_fields_keeps_the_secrets(admin_client):
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)

    response = admin_client.patch(f"/api/v1/channels/{channel.pk}", {"name": "Shop v2"}, format="json")

    assert response.status_code == 200
    channel.refresh_from_db()
    assert (channel.name, channel.secrets) == ("Shop v2", SECRETS)


def test_api_patch_with_an_empty_value_removes_the_key(admin_client):
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)

    response = admin_client.patch(f"/api/v1/channels/{channel.pk}", {"secrets": {"api_key": ""}}, format="json")

    assert response.status_code == 200
    channel.refresh_from_db()
    assert channel.secrets == {"callback_secret": CALLBACK_SECRET}


# --- The Django admin ----------------------------------------------------------------------------------------


@pytest.fixture
def admin_browser(client, admin_user):
    """The Django test client signed in as a desk administrator (role admin, staff, not a superuser)."""
    assert not admin_user.is_superuser
    assert client.login(username=admin_user.username, password="correct-horse-battery")
    return client


def admin_form(channel: Channel, **changes) -> dict:
    form = {
        "kind": channel.kind,
        "provider": channel.provider,
        "name": channel.name,
        "address": channel.address,
        "settings": json.dumps(channel.settings),
        "default_team": "",
        "continue_open_ticket": "on",
        "is_active": "on",
        "new_secrets": "",
        "_save": "Save",
    }
    form.update(changes)
    return form


def test_admin_change_page_shows_secret_names_but_no_value(admin_browser):
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)

    response = admin_browser.get(f"/admin/channels_app/channel/{channel.pk}/change/")

    assert response.status_code == 200
    assert_no_secret_in(response.content)
    assert "api_key, callback_secret" in response.content.decode()


def test_admin_list_page_holds_no_secret(admin_browser):
    channel_create(kind="api", name="Shop", secrets=SECRETS)

    response = admin_browser.get("/admin/channels_app/channel/")

    assert response.status_code == 200
    assert_no_secret_in(response.content)


def test_saving_the_admin_form_with_empty_new_secrets_keeps_them(admin_browser):
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)

    response = admin_browser.post(
        f"/admin/channels_app/channel/{channel.pk}/change/", admin_form(channel, name="Shop (renamed)")
    )

    assert response.status_code == 302, response.content.decode()[-2000:]
    channel.refresh_from_db()
    assert (channel.name, channel.secrets) == ("Shop (renamed)", SECRETS)


def test_saving_the_admin_form_with_new_secrets_merges_them(admin_browser):
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)
    changes = json.dumps({"api_key": None, "signing_key": "sk-new-4411"})

    response = admin_browser.post(
        f"/admin/channels_app/channel/{channel.pk}/change/", admin_form(channel, new_secrets=changes)
    )

    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.secrets == {"callback_secret": CALLBACK_SECRET, "signing_key": "sk-new-4411"}


@pytest.mark.parametrize("new_secrets", ["not json", '["a"]', '{"api_key": 5}'])
def test_admin_form_refuses_malformed_new_secrets_and_keeps_the_old(admin_browser, new_secrets):
    channel = channel_create(kind="api", name="Shop", secrets=SECRETS)

    response = admin_browser.post(
        f"/admin/channels_app/channel/{channel.pk}/change/", admin_form(channel, new_secrets=new_secrets)
    )

    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["new_secrets"]
    assert_no_secret_in(response.content)
    channel.refresh_from_db()
    assert channel.secrets == SECRETS


def test_plain_agent_cannot_open_the_django_admin(client):
    agent = AgentFactory()
    client.force_login(agent)

    response = client.get("/admin/channels_app/channel/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- Logs ---------------------------------------------------------------------------------------------------------


def test_secrets_never_reach_the_logs_when_a_channel_is_created_and_a_reply_is_sent(
    caplog, admin_client, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    server = CallbackServer().start()
    try:
        # When an admin creates a channel with a callback and secrets, and a reply is sent (and signed) through it
        response = admin_client.post(
            "/api/v1/channels",
            {"kind": "api", "name": "Shop", "settings": {"callback_url": server.url}, "secrets": SECRETS},
            format="json",
        )
        channel = Channel.objects.get(pk=response.json()["id"])
        customer = CustomerFactory()
        CustomerIdentity.objects.create(customer=customer, kind="external", value="u-1")
        ticket = TicketFactory(customer=customer, channel=channel)
        with django_capture_on_commit_callbacks(execute=True):
            message = reply_create(ticket=ticket, author=AgentFactory(), text="Signed reply")
        delivery_send(delivery_id=Delivery.objects.get(message=message).pk)
    finally:
        server.stop()

    # Then the reply went out signed with the secret, which itself travelled nowhere
    assert Delivery.objects.get().status == "sent"
    assert len(server.requests) == 1
    assert_no_secret_in(server.requests[0].body)
    assert_no_secret_in(json.dumps(server.requests[0].headers))
    # And no log record holds a secret, in its message or in its structured fields
    assert caplog.records, "the flow logs something, so the check below looks at real records"
    assert_no_secret_in(caplog.text)
    for record in caplog.records:
        assert_no_secret_in(repr(record.__dict__))
