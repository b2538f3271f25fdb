"""Settings: teams and agents. Duplicate team names shown next to the name, stale team forms refused, agents created
with a password they sign in with, deactivated (never deleted) and reactivated; nobody deactivates themselves or
demotes the last administrator."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from agents.models import AgentProfile, Team
from tests.console.conftest import csrf_token
from tests.factories import AdminFactory, AgentFactory, MessageFactory, TeamFactory

pytestmark = pytest.mark.django_db

TEAMS_URL = "/console/settings/teams/"
AGENTS_URL = "/console/settings/agents/"
NEW_TEAM_URL = "/console/settings/teams/new/"
NEW_AGENT_URL = "/console/settings/agents/new/"


def post(client: Client, url: str, data: dict, *, form_url: str | None = None):
    token = csrf_token(client, form_url or url)
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def field_errors(response, field: str) -> list[str]:
    return [str(error) for error in response.context["form"].errors.get(field, [])]


def team_url(team: Team) -> str:
    return reverse("console:settings-team-edit", args=[team.pk])


def agent_url(user) -> str:
    return reverse("console:settings-agent-edit", args=[user.pk])


# --- Permissions --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [TEAMS_URL, NEW_TEAM_URL, AGENTS_URL, NEW_AGENT_URL])
def test_agents_get_403_and_admins_200(console_client, console_admin_client, url):
    assert console_client.get(url).status_code == 403
    assert console_admin_client.get(url).status_code == 200


def test_an_agent_cannot_deactivate_anyone(console_client, console_admin):
    response = console_client.post(reverse("console:settings-agent-deactivate", args=[console_admin.pk]))

    assert response.status_code == 403
    console_admin.refresh_from_db()
    assert console_admin.is_active


# --- Teams --------------------------------------------------------------------------------------------------------


def test_an_admin_creates_a_team_with_members(console_admin_client):
    ann, bob = AgentFactory(username="ann"), AgentFactory(username="bob")

    response = post(
        console_admin_client,
        NEW_TEAM_URL,
        {"name": " Billing ", "description": "Invoices", "members": [ann.agent_profile.pk, bob.agent_profile.pk]},
    )

    assert response.status_code == 302
    team = Team.objects.get()
    assert (team.name, team.description) == ("Billing", "Invoices")
    assert sorted(profile.user.username for profile in team.agents.all()) == ["ann", "bob"]


@pytest.mark.parametrize("name", ["Billing", "billing"])
def test_a_duplicate_team_name_is_shown_next_to_the_name(console_admin_client, name):
    TeamFactory(name="Billing")

    response = post(console_admin_client, NEW_TEAM_URL, {"name": name, "description": ""})

    assert response.status_code == 400
    assert field_errors(response, "name") == ["A team with this name already exists."]
    assert 'id="id_name_error"' in response.content.decode()
    assert Team.objects.count() == 1


def test_renaming_a_team_to_another_teams_name_is_refused(console_admin_client):
    TeamFactory(name="Billing")
    sales = TeamFactory(name="Sales")
    version = console_admin_client.get(team_url(sales)).context["form"].initial["version"]

    response = post(console_admin_client, team_url(sales), {"name": "BILLING", "version": version})

    assert response.status_code == 400
    assert field_errors(response, "name") == ["A team with this name already exists."]
    sales.refresh_from_db()
    assert sales.name == "Sales"


def test_an_admin_edits_a_team_and_its_members(console_admin_client):
    team = TeamFactory(name="Sales")
    ann, bob = AgentFactory(username="ann"), AgentFactory(username="bob")
    team.agents.add(ann.agent_profile)
    version = console_admin_client.get(team_url(team)).context["form"].initial["version"]

    response = post(
        console_admin_client,
        team_url(team),
        {"name": "Sales EU", "description": "Europe", "members": [bob.agent_profile.pk], "version": version},
    )

    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.name, team.description) == ("Sales EU", "Europe")
    assert [profile.user.username for profile in team.agents.all()] == ["bob"]


def test_a_stale_team_form_is_refused_with_the_current_members(console_admin_client):
    team = TeamFactory(name="Sales")
    ann, bob = AgentFactory(username="ann"), AgentFactory(username="bob")
    version = console_admin_client.get(team_url(team)).context["form"].initial["version"]
    team.agents.add(ann.agent_profile)  # another admin added Ann meanwhile

    response = post(
        console_admin_client,
        team_url(team),
        {"name": "Sales", "members": [bob.agent_profile.pk], "version": version},
    )

    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()
    assert [profile.user.username for profile in team.agents.all()] == ["ann"]


def test_team_and_member_names_are_escaped(console_admin_client):
    team = TeamFactory(name="<img src=x onerror=alert(1)>")
    team.agents.add(AgentFactory(profile__display_name="<script>x()</script>").agent_profile)

    page = console_admin_client.get(TEAMS_URL).content.decode()

    assert "<img src=x" not in page and "<script>x()" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page


@pytest.mark.parametrize("size", [2, 10])
def test_the_team_list_costs_the_same_queries_whatever_its_size(console_admin_client, django_assert_num_queries, size):
    for _ in range(size):
        team = TeamFactory()
        team.agents.add(AgentFactory().agent_profile, AgentFactory().agent_profile)
    console_admin_client.get(TEAMS_URL)

    with django_assert_num_queries(5):
        response = console_admin_client.get(TEAMS_URL)

    assert response.content.decode().count("data-team-id=") == size


# --- Agents -------------------------------------------------------------------------------------------------------


def test_an_admin_creates_an_agent_who_signs_in_with_the_initial_password(console_admin_client):
    team = TeamFactory(name="Billing")

    response = post(
        console_admin_client,
        NEW_AGENT_URL,
        {
            "username": "carol",
            "email": "carol@desk.example",
            "display_name": "Carol K",
            "role": "agent",
            "teams": [team.pk],
            "password": "a-long-enough-passphrase",
        },
    )

    assert response.status_code == 302
    profile = AgentProfile.objects.select_related("user").get(user__username="carol")
    assert (profile.display_name, profile.role, profile.user.email) == ("Carol K", "agent", "carol@desk.example")
    assert [t.name for t in profile.teams.all()] == ["Billing"]
    assert not profile.user.is_staff
    assert Client().login(username="carol", password="a-long-enough-passphrase")


@pytest.mark.parametrize(
    ("overrides", "field", "error"),
    [
        ({"username": "ANN"}, "username", "That username is taken."),
        ({"username": "bad name!"}, "username", "Enter a valid username."),
        ({"email": "nope"}, "email", "Enter a valid email address."),
        ({"password": "short"}, "password", "This password is too short."),
        ({"role": "owner"}, "role", "Select a valid choice."),
    ],
)
def test_bad_agent_input_is_shown_next_to_the_field(console_admin_client, overrides, field, error):
    AgentFactory(username="ann")
    data = {"username": "carol", "email": "", "role": "agent", "password": "a-long-enough-passphrase", **overrides}

    response = post(console_admin_client, NEW_AGENT_URL, data)

    assert response.status_code == 400
    assert any(message.startswith(error) for message in field_errors(response, field)), response.context["form"].errors
    assert not get_user_model().objects.filter(username="carol").exists()


def test_an_admin_edits_an_agents_role_and_teams(console_admin_client):
    carol = AgentFactory(username="carol")
    team = TeamFactory()

    response = post(
        console_admin_client,
        agent_url(carol),
        {"email": "c@desk.example", "display_name": "Carol", "role": "admin", "teams": [team.pk]},
    )

    assert response.status_code == 302
    carol.refresh_from_db()
    assert carol.agent_profile.role == "admin"
    assert carol.is_staff
    assert list(carol.agent_profile.teams.all()) == [team]


def test_the_last_admin_cannot_be_demoted(console_admin_client, console_admin):
    response = post(console_admin_client, agent_url(console_admin), {"email": "", "display_name": "", "role": "agent"})

    assert response.status_code == 400
    assert field_errors(response, "role") == [
        "This is the last administrator; make someone else an administrator first."
    ]
    console_admin.refresh_from_db()
    assert console_admin.agent_profile.role == "admin"
    assert console_admin.is_staff


def test_an_admin_may_be_demoted_while_another_remains(console_admin_client):
    other = AdminFactory(username="other-admin")

    response = post(console_admin_client, agent_url(other), {"email": "", "display_name": "", "role": "agent"})

    assert response.status_code == 302
    other.refresh_from_db()
    assert other.agent_profile.role == "agent"
    assert not other.is_staff


def test_deactivating_keeps_the_agent_and_their_messages(console_admin_client):
    carol = AgentFactory(username="carol")
    message = MessageFactory(author=carol, direction="outbound")

    response = post(
        console_admin_client, reverse("console:settings-agent-deactivate", args=[carol.pk]), {}, form_url=AGENTS_URL
    )

    assert response.status_code == 302
    carol.refresh_from_db()
    assert not carol.is_active
    message.refresh_from_db()
    assert message.author_id == carol.pk
    assert not Client().login(username="carol", password="correct-horse-battery")

    response = post(
        console_admin_client, reverse("console:settings-agent-reactivate", args=[carol.pk]), {}, form_url=AGENTS_URL
    )

    assert response.status_code == 302
    carol.refresh_from_db()
    assert carol.is_active


def test_an_admin_cannot_deactivate_themselves(console_admin_client, console_admin):
    AdminFactory()  # not the last admin: the rule is about oneself

    response = post(
        console_admin_client,
        reverse("console:settings-agent-deactivate", args=[console_admin.pk]),
        {},
        form_url=AGENTS_URL,
    )

    assert response.status_code == 302
    console_admin.refresh_from_db()
    assert console_admin.is_active
    page = console_admin_client.get(AGENTS_URL).content.decode()
    assert "You cannot deactivate yourself." in page


def test_the_last_active_admin_cannot_be_deactivated_by_a_superuser():
    superuser = get_user_model().objects.create_superuser("root", "root@desk.example", "root-password-long")
    admin = AdminFactory(username="only-admin")
    AdminFactory(username="gone-admin", is_active=False)
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)

    response = post(client, reverse("console:settings-agent-deactivate", args=[admin.pk]), {}, form_url=AGENTS_URL)

    # The superuser remains an administrator: the admin may go.
    assert response.status_code == 302
    admin.refresh_from_db()
    assert not admin.is_active


def test_deactivate_without_the_csrf_token_is_refused(console_admin_client):
    carol = AgentFactory(username="carol")

    response = console_admin_client.post(reverse("console:settings-agent-deactivate", args=[carol.pk]))

    assert response.status_code == 403
    carol.refresh_from_db()
    assert carol.is_active


def test_agent_names_are_escaped(console_admin_client):
    AgentFactory(username="eve", profile__display_name='"><script>alert(1)</script>')

    page = console_admin_client.get(AGENTS_URL).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("size", [2, 10])
def test_the_agent_list_costs_the_same_queries_whatever_its_size(console_admin_client, django_assert_num_queries, size):
    teams = [TeamFactory(), TeamFactory()]
    for _ in range(size):
        AgentFactory().agent_profile.teams.set(teams)
    console_admin_client.get(AGENTS_URL)

    with django_assert_num_queries(5):
        response = console_admin_client.get(AGENTS_URL)

    assert response.content.decode().count("data-agent-id=") == size + 1  # and the signed-in admin


def test_a_deactivated_member_stays_offered_and_checked_on_the_team_form(console_admin_client):
    team = TeamFactory(name="Sales")
    away = AgentFactory(username="away", is_active=False)
    team.agents.add(away.agent_profile)

    page = console_admin_client.get(team_url(team)).content.decode()

    assert "(away), deactivated" in page
    [checkbox] = re.findall(rf'<input[^>]*value="{away.agent_profile.pk}"[^>]*>', page)
    assert "checked" in checkbox
