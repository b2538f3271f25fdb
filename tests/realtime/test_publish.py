"""Publishing: only after commit, to the right groups, bounded queries, and best-effort when Redis is down."""

import asyncio
import logging

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from realtime.groups import AGENTS, ticket_group
from realtime.publish import message_created_publish, realtime_publish
from tests.factories import AgentFactory, MessageFactory, TicketFactory
from tests.realtime.fixtures import QUIET, redis_layer, run  # noqa: F401
from tickets.models import Attachment, Message
from tickets.services.replies import note_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_layer")]


class Rollback(Exception):
    pass


async def listen(*groups: str) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return channel


# A receive that was waiting when the last check went quiet, per channel: the publish/subscribe layer drops a
# channel whose receive is cancelled (a consumer's receive is cancelled only when it closes), so a quiet moment
# leaves the receive waiting for the next check instead.
_waiting: dict[str, asyncio.Future] = {}


async def received(channel: str) -> list[dict]:
    """Everything that reaches ``channel`` until it stays quiet for a moment."""
    layer = get_channel_layer()
    messages = []
    while True:
        receive = _waiting.pop(channel, None) or asyncio.ensure_future(layer.receive(channel))
        done, _ = await asyncio.wait({receive}, timeout=QUIET)
        if not done:
            _waiting[channel] = receive
            return messages
        messages.append(receive.result())


def test_events_go_out_on_commit_and_never_after_a_rollback():
    event = {"type": "viewers", "ticket_id": 1, "agents": []}

    def rolled_back():
        with pytest.raises(Rollback), transaction.atomic():
            realtime_publish(groups=["ticket.1"], event=event)
            raise Rollback

    async def scenario():
        channel = await listen("ticket.1")
        await database_sync_to_async(rolled_back)()
        assert await received(channel) == []
        await database_sync_to_async(committed)(channel)
        assert await received(channel) == [{"type": "realtime.event", "event": event, "group": "ticket.1"}]

    seen_before_commit = []

    def committed(channel):
        with transaction.atomic():
            realtime_publish(groups=["ticket.1"], event=event)
            seen_before_commit.append(async_to_sync(received)(channel))

    run(scenario)
    assert seen_before_commit == [[]]


def test_a_message_goes_to_its_ticket_and_the_agents_with_its_audience(django_assert_max_num_queries):
    ticket = TicketFactory()
    message = MessageFactory(ticket=ticket, text="Hello")
    attachment = Attachment.objects.create(
        message=message, file="a/b.png", filename="b.png", content_type="image/png", size=3
    )

    def publish():
        with django_assert_max_num_queries(2):
            message_created_publish(message=message)

    async def scenario():
        channel = await listen(ticket_group(ticket.pk), AGENTS)
        await database_sync_to_async(publish)()
        return await received(channel)

    events = run(scenario)
    assert sorted(event["group"] for event in events) == sorted([ticket_group(ticket.pk), AGENTS])
    for event in events:
        assert event["audience"] == {"team_id": None, "assignee_id": None}
        assert event["event"]["message"]["attachments"] == [
            {
                "id": attachment.pk,
                "filename": "b.png",
                "content_type": "image/png",
                "size": 3,
                "url": f"/api/v1/attachments/{attachment.pk}",
            }
        ]
        assert event["event"]["message"]["author_name"] == ticket.customer.name
        assert event["event"]["message"]["text"] == "Hello"


def test_redis_down_does_not_break_the_transaction(settings, caplog):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "realtime.layers.RedisPubSubLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    ticket = TicketFactory()
    agent = AgentFactory()
    with caplog.at_level(logging.WARNING, logger="realtime.publish"):
        note = note_create(ticket=ticket, author=agent, text="Redis is down, the note is not")
    assert Message.objects.filter(pk=note.pk, direction=Message.Direction.NOTE).exists()
    # One failure: the note's events for all their groups go out in one round trip, which failed.
    assert [record.msg for record in caplog.records if record.name == "realtime.publish"] == [
        "realtime.publish_failed",
    ]
