"""Presence on Redis: connections counted up and down, expiring without a heartbeat (a crashed server)."""

import pytest

from agents.models import AgentProfile
from channels_app.models import Channel
from realtime import presence
from realtime.presence import (
    TTL_SECONDS,
    agent_ids_online,
    agent_presence_join,
    agents_online,
    presence_leave,
    presence_refresh,
    ticket_viewer_join,
    ticket_viewers,
    visitor_is_online,
    visitor_presence_join,
)
from tests.factories import AgentFactory, ChannelFactory, TeamFactory
from tests.realtime.fixtures import redis_layer  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_layer")]


@pytest.fixture
def clock(monkeypatch):
    """The presence clock, moved by hand (no sleeping for 90 s)."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(presence, "_now", lambda: now[0])
    return now


def test_agent_connections_count_up_and_down(clock):
    agent = AgentFactory()
    assert agents_online() is False
    first = agent_presence_join(user_id=agent.pk, connection_id="tab-1")
    second = agent_presence_join(user_id=agent.pk, connection_id="tab-2")
    assert agents_online() is True
    assert agent_ids_online() == {agent.pk}
    presence_leave(entries=[first])
    assert agents_online() is True
    presence_leave(entries=[second])
    assert agents_online() is False


def test_connections_expire_without_heartbeat_and_live_on_with_one(clock):
    crashed = AgentFactory()
    alive = AgentFactory()
    agent_presence_join(user_id=crashed.pk, connection_id="server-a")
    kept = agent_presence_join(user_id=alive.pk, connection_id="server-b")
    visitor_entry = visitor_presence_join(visitor_public_id="0" * 32, connection_id="widget")

    clock[0] += TTL_SECONDS - 10
    presence_refresh(entries=[kept, visitor_entry])  # server b's heartbeat; server a is gone
    clock[0] += 20
    assert agent_ids_online() == {alive.pk}
    assert visitor_is_online(visitor_public_id="0" * 32) is True

    clock[0] += TTL_SECONDS
    assert agents_online() is False
    assert visitor_is_online(visitor_public_id="0" * 32) is False


def test_visitor_presence_is_per_visitor(clock):
    entry = visitor_presence_join(visitor_public_id="a" * 32, connection_id="c1")
    assert visitor_is_online(visitor_public_id="a" * 32) is True
    assert visitor_is_online(visitor_public_id="b" * 32) is False
    presence_leave(entries=[entry])
    assert visitor_is_online(visitor_public_id="a" * 32) is False


def test_agents_online_for_a_channel_with_a_team_means_its_members_or_an_admin(clock):
    team = TeamFactory()
    channel = ChannelFactory(kind=Channel.Kind.CHAT, default_team=team)
    outsider = AgentFactory()
    member = AgentFactory()
    member.agent_profile.teams.add(team)
    admin = AgentFactory(profile__role=AgentProfile.Role.ADMIN)

    outsider_entry = agent_presence_join(user_id=outsider.pk, connection_id="o")
    assert agents_online() is True
    assert agents_online(channel=channel) is False
    member_entry = agent_presence_join(user_id=member.pk, connection_id="m")
    assert agents_online(channel=channel) is True
    presence_leave(entries=[member_entry, outsider_entry])
    agent_presence_join(user_id=admin.pk, connection_id="a")
    assert agents_online(channel=channel) is True


def test_ticket_viewers_once_per_agent(clock):
    dora, eric = AgentFactory(), AgentFactory()
    ticket_viewer_join(ticket_id=5, user_id=eric.pk, name="Eric", connection_id="e1")
    tab = ticket_viewer_join(ticket_id=5, user_id=dora.pk, name="Dora: Support", connection_id="d1")
    ticket_viewer_join(ticket_id=5, user_id=dora.pk, name="Dora: Support", connection_id="d2")
    ticket_viewer_join(ticket_id=6, user_id=eric.pk, name="Eric", connection_id="e1")
    expected = sorted(
        [{"id": dora.pk, "name": "Dora: Support"}, {"id": eric.pk, "name": "Eric"}], key=lambda v: v["id"]
    )
    assert ticket_viewers(ticket_id=5) == expected
    presence_leave(entries=[tab])
    assert ticket_viewers(ticket_id=5) == expected  # the other tab still views it
    clock[0] += TTL_SECONDS + 1
    assert ticket_viewers(ticket_id=5) == []


def test_redis_down_means_nobody_online_and_no_error(settings, clock):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    entry = agent_presence_join(user_id=1, connection_id="x")
    presence_leave(entries=[entry])
    assert agents_online() is False
    assert visitor_is_online(visitor_public_id="c" * 32) is False
    assert ticket_viewers(ticket_id=1) == []
