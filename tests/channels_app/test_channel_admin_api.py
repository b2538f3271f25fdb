"""Admins configure channels over the API: addresses are normalised and unique per kind; the kind is fixed."""

import json

import pytest

from channels_app.models import Channel
from tests.factories import ChannelFactory, TeamFactory

pytestmark = pytest.mark.django_db


def create(client, **body):
    return client.post("/api/v1/channels", data=json.dumps(body), content_type="application/json")


def change(client, channel, **body):
    return client.patch(f"/api/v1/channels/{channel.pk}", data=json.dumps(body), content_type="application/json")


# --- Create ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "written", "stored", "continues_open_ticket"),
    [
        ("email", "  Support@Desk.EXAMPLE ", "support@desk.example", False),
        ("email", "<Help@Desk.example>", "help@desk.example", False),
        ("sms", "(415) 555-0199", "+14155550199", True),
        ("sms", "+44 20 7946 0958", "+442079460958", True),
        ("chat", " desk.example ", "desk.example", True),
        ("api", "", "", True),
    ],
)
def test_an_admin_creates_a_channel_with_a_normalised_address(
    kind, written, stored, continues_open_ticket, admin_client
):
    response = create(admin_client, kind=kind, name="Support", address=written, settings={"signature": "The team"})

    assert response.status_code == 201
    channel = Channel.objects.get()
    assert (channel.kind, channel.name, channel.address) == (kind, "Support", stored)
    assert channel.settings == {"signature": "The team"}
    assert channel.continue_open_ticket is continues_open_ticket
    assert channel.is_active is True
    body = response.json()
    assert (body["id"], body["kind"], body["address"]) == (channel.pk, kind, stored)
    assert body["public_key"] == channel.public_key
    assert body["public_key"].startswith("pk_")


def test_a_new_channel_may_set_its_team_and_continuation(admin_client):
    team = TeamFactory()

    response = create(admin_client, kind="email", name="VIP", default_team=team.pk, continue_open_ticket=True)

    assert response.status_code == 201
    channel = Channel.objects.get()
    assert (channel.default_team_id, channel.continue_open_ticket) == (team.pk, True)


@pytest.mark.parametrize(
    ("kind", "first", "second"),
    [
        ("email", "support@desk.example", "SUPPORT@desk.example"),
        ("sms", "+14155550199", "(415) 555-0199"),
    ],
)
def test_the_same_address_twice_in_one_kind_is_a_conflict(kind, first, second, admin_client):
    assert create(admin_client, kind=kind, name="First", address=first).status_code == 201

    response = create(admin_client, kind=kind, name="Second", address=second)

    assert response.status_code == 409
    assert response.json() == {
        "detail": "Another channel of this kind already has this address.",
        "code": "address_taken",
    }
    assert list(Channel.objects.values_list("name", flat=True)) == ["First"]


def test_the_same_address_in_another_kind_is_fine(admin_client):
    create(admin_client, kind="chat", name="Widget", address="desk.example")

    response = create(admin_client, kind="api", name="Shop", address="desk.example")

    assert response.status_code == 201
    assert Channel.objects.count() == 2


def test_channels_without_an_address_do_not_clash(admin_client):
    create(admin_client, kind="api", name="Shop")

    response = create(admin_client, kind="api", name="Billing")

    assert response.status_code == 201
    assert list(Channel.objects.order_by("name").values_list("address", flat=True)) == ["", ""]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"kind": "email", "name": "Bad", "address": "not an address"}, 400, "address: not a valid email address"),
        ({"kind": "sms", "name": "Bad", "address": "call us"}, 400, "address: not a phone number"),
        ({"kind": "fax", "name": "Bad"}, 400, "Invalid input."),
        ({"name": "No kind"}, 400, "A channel needs a kind and a name."),
        ({"kind": "email"}, 400, "A channel needs a kind and a name."),
    ],
    ids=["invalid email address", "invalid phone address", "unknown kind", "no kind", "no name"],
)
def test_an_invalid_channel_is_refused(body, status, detail, admin_client):
    response = create(admin_client, **body)

    assert response.status_code == status
    assert response.json()["detail"] == detail
    assert Channel.objects.count() == 0


def test_an_agent_may_not_create_or_list_channels(agent_client):
    ChannelFactory()

    created = create(agent_client, kind="email", name="Mine", address="mine@desk.example")
    listed = agent_client.get("/api/v1/channels")

    assert (created.status_code, listed.status_code) == (403, 403)
    assert created.json() == {"detail": "Only administrators may do this."}
    assert Channel.objects.count() == 1


def test_an_admin_lists_channels_by_name(admin_client):
    ChannelFactory(name="Widget", kind="chat")
    ChannelFactory(name="Mailbox", kind="email")

    response = admin_client.get("/api/v1/channels")

    assert response.status_code == 200
    assert [(row["name"], row["kind"]) for row in response.json()] == [("Mailbox", "email"), ("Widget", "chat")]


# --- Change ---------------------------------------------------------------------------------------------------


def test_an_admin_renames_a_channel_and_changes_its_settings(admin_client):
    channel = ChannelFactory(kind="sms", name="Old", address="+14155550199", settings={"phone_region": "US"})

    response = change(admin_client, channel, name="Texts", settings={"phone_region": "AU"}, is_active=False)

    assert response.status_code == 200
    channel.refresh_from_db()
    assert (channel.name, channel.settings, channel.is_active) == ("Texts", {"phone_region": "AU"}, False)
    assert channel.address == "+14155550199"
    assert (response.json()["name"], response.json()["settings"]) == ("Texts", {"phone_region": "AU"})


def test_a_changed_address_is_normalised(admin_client):
    channel = ChannelFactory(kind="email", address="old@desk.example")

    response = change(admin_client, channel, address=" New@Desk.Example ")

    assert response.status_code == 200
    channel.refresh_from_db()
    assert channel.address == "new@desk.example"


def test_changing_to_an_address_already_taken_is_a_conflict(admin_client):
    ChannelFactory(kind="email", name="Sales", address="sales@desk.example")
    channel = ChannelFactory(kind="email", name="Support", address="support@desk.example")

    response = change(admin_client, channel, address="Sales@desk.example", name="Renamed")

    assert response.status_code == 409
    assert response.json()["code"] == "address_taken"
    channel.refresh_from_db()
    assert (channel.name, channel.address) == ("Support", "support@desk.example")


def test_a_channels_kind_cannot_change(admin_client):
    channel = ChannelFactory(kind="email", name="Mailbox", address="support@desk.example")

    response = change(admin_client, channel, kind="sms", name="Renamed")

    assert response.status_code == 400
    assert response.json() == {"detail": "A channel's kind cannot change; create another channel.", "code": "invalid"}
    channel.refresh_from_db()
    assert (channel.kind, channel.name) == ("email", "Mailbox")


def test_sending_the_same_kind_back_is_not_a_change_of_kind(admin_client):
    channel = ChannelFactory(kind="email", name="Mailbox")

    response = change(admin_client, channel, kind="email", name="Renamed")

    assert response.status_code == 200
    channel.refresh_from_db()
    assert (channel.kind, channel.name) == ("email", "Renamed")


def test_an_agent_may_not_change_a_channel(agent_client):
    channel = ChannelFactory(name="Mailbox")

    response = change(agent_client, channel, name="Mine")

    assert response.status_code == 403
    channel.refresh_from_db()
    assert channel.name == "Mailbox"


def test_an_unknown_channel_answers_404(admin_client):
    response = admin_client.patch(
        "/api/v1/channels/999999", data=json.dumps({"name": "x"}), content_type="application/json"
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "No such channel.", "code": "not_found"}
