"""realtime.layers.RedisPubSubLayer: what a request thread publishes without an event loop reaches the
connections in the groups, as the layer's own group_send does."""

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.utils import decode_hosts

from realtime.layers import RedisPubSubLayer, database_scoped_prefix
from tests.realtime.fixtures import QUIET, redis_layer, run  # noqa: F401

pytestmark = pytest.mark.usefixtures("redis_layer")


async def take(layer, channel: str) -> list[dict]:
    messages = []
    receive = asyncio.ensure_future(layer.receive(channel))
    while True:
        done, _ = await asyncio.wait({receive}, timeout=QUIET)
        if not done:
            receive.cancel()
            return messages
        messages.append(receive.result())
        receive = asyncio.ensure_future(layer.receive(channel))


def test_a_sync_publish_reaches_every_group_member_once_per_group_as_group_send_does():
    layer = get_channel_layer()

    async def scenario():
        agent, visitor = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("ticket.7", agent)
        await layer.group_add("agents", agent)
        await layer.group_add("visitor.abc", visitor)
        # From a thread with no event loop, as a request's after-commit hook runs.
        await sync_to_async(layer.group_send_from_sync, thread_sensitive=False)(
            [
                ("ticket.7", {"type": "realtime.event", "event": {"n": 1}, "group": "ticket.7"}),
                ("agents", {"type": "realtime.event", "event": {"n": 1}, "group": "agents"}),
                ("visitor.abc", {"type": "realtime.event", "event": {"n": 2}, "group": "visitor.abc"}),
                ("nobody.listens", {"type": "realtime.event", "event": {"n": 3}, "group": "nobody.listens"}),
            ]
        )
        await layer.group_send("agents", {"type": "realtime.event", "event": {"n": 4}, "group": "agents"})
        return await take(layer, agent), await take(layer, visitor)

    to_agent, to_visitor = run(scenario)

    assert sorted((message["group"], message["event"]["n"]) for message in to_agent) == [
        ("agents", 1),
        ("agents", 4),
        ("ticket.7", 1),
    ]
    assert to_visitor == [{"type": "realtime.event", "event": {"n": 2}, "group": "visitor.abc"}]


def test_sync_publishing_is_for_plain_hosts():
    layer = get_channel_layer()
    assert layer.can_send_from_sync is True
    sentinel = type(layer)(hosts=[{"sentinels": [("127.0.0.1", 26379)], "master_name": "main"}])
    assert sentinel.can_send_from_sync is False


def test_desks_on_other_databases_of_one_redis_do_not_hear_each_others_pushes():
    # Publish/subscribe ignores the database number: two desks whose REDIS_URL differ only in it, same prefix
    this_url = os.environ["REDIS_URL"]
    other_url = urlunsplit(urlsplit(this_url)._replace(path=f"/{int(urlsplit(this_url).path.strip('/') or 0) + 1}"))
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    this_desk, other_desk, same_desk = (
        RedisPubSubLayer(hosts=[url], prefix=prefix) for url in (this_url, other_url, this_url)
    )

    async def scenario():
        agent = await this_desk.new_channel()
        await this_desk.group_add("agents", agent)
        await other_desk.group_send("agents", {"type": "realtime.event", "event": {"desk": "other"}})
        await sync_to_async(other_desk.group_send_from_sync, thread_sensitive=False)(
            [("agents", {"type": "realtime.event", "event": {"desk": "other, from sync"}})]
        )
        await same_desk.group_send("agents", {"type": "realtime.event", "event": {"desk": "same"}})
        received = await take(this_desk, agent)
        for layer in (this_desk, other_desk, same_desk):
            await layer.flush()
        return received

    assert [message["event"] for message in run(scenario)] == [{"desk": "same"}]


@pytest.mark.parametrize(
    ("hosts", "prefix"),
    [
        (["redis://127.0.0.1:6379/4"], "asgi.db4"),
        (["redis://127.0.0.1:6379"], "asgi.db0"),
        ([{"address": "rediss://:secret@redis.example:6380/2"}], "asgi.db2"),
        ([{"sentinels": [("127.0.0.1", 26379)], "master_name": "main", "db": 3}], "asgi.db3"),
    ],
)
def test_the_layers_prefix_names_the_database(hosts, prefix):
    assert database_scoped_prefix("asgi", hosts=decode_hosts(hosts)) == prefix
