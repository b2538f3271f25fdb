"""Requests while Redis (cache, channel layer, presence, rate limits and the Celery broker) is down: no 5xx, and
nothing the customer sent is lost. The Redis is the test's own, stopped for real mid-conversation."""

import json
import logging
import uuid

import pytest
from django.core.cache import caches
from django.test import Client
from rest_framework.test import APIClient

from channels_app.models import Delivery, InboundEvent
from channels_app.services.channels import channel_create
from channels_app.services.sweeps import stalled_delivery_ids
from channels_app.sms import rate_limit as sms_rate_limit
from channels_app.sms.rate_limit import sms_send_slot_take
from chat.models import ChatVisitor
from helpdesk import cache as helpdesk_cache
from tests.channels_app.sms_fixtures import inbound_path, post_twilio, sms_channel_create, twilio_payload
from tests.chat.conftest import SHOP_ORIGIN, Widget
from tests.conftest import services_or_skip
from tests.factories import AgentFactory
from tickets.models import Message, Ticket

pytestmark = pytest.mark.services


@pytest.fixture
def redis_for_everything(redis_broker, settings, celery_sends_to):
    """This process on the test's Redis, as production runs on one: cache, channel layer, presence, rate limits,
    and the broker its requests enqueue tasks on."""
    settings.REDIS_URL = redis_broker.url
    settings.CACHES = {"default": {"BACKEND": "helpdesk.cache.SharedRedisCache", "LOCATION": redis_broker.url}}
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "realtime.layers.RedisPubSubLayer", "CONFIG": {"hosts": [redis_broker.url]}}
    }
    celery_sends_to(redis_broker.url)
    return redis_broker


@pytest.fixture
def chat_channel(transactional_db):
    return channel_create(kind="chat", name="Shop chat", settings={"allowed_origins": [SHOP_ORIGIN]})


def test_chat_messages_sent_while_redis_is_down_are_stored_and_a_flood_is_still_refused(
    redis_for_everything, chat_channel, settings, caplog
):
    services_or_skip(need_postgres=True)
    settings.HELPDESK = {**settings.HELPDESK, "CHAT_VISITOR_MESSAGES_PER_MINUTE": 3}
    widget = Widget(chat_channel)
    widget.start()
    assert widget.say("before the outage").status_code == 201

    redis_for_everything.stop()
    answers = [widget.say(f"during the outage {number}") for number in range(4)]

    # Counted in this process while Redis is away: three more, then the fourth waits for the window
    assert [answer.status_code for answer in answers] == [201, 201, 201, 429]
    assert 1 <= int(answers[3]["Retry-After"]) <= 60
    assert answers[3].json()["detail"]
    texts = list(Message.objects.order_by("pk").values_list("text", flat=True))
    assert texts == ["before the outage", "during the outage 0", "during the outage 1", "during the outage 2"]
    assert InboundEvent.objects.filter(status=InboundEvent.Status.PROCESSED).count() == 4
    assert InboundEvent.objects.count() == 4  # nothing stored for the refused one
    assert "chat.rate_limit_redis_unavailable" in caplog.messages


def test_once_redis_is_back_the_visitors_count_is_kept_there_again(redis_for_everything, chat_channel, monkeypatch):
    services_or_skip(need_postgres=True)
    monkeypatch.setattr(helpdesk_cache, "OUTAGE_RETRY_SECONDS", 0.0)
    widget = Widget(chat_channel)
    widget.start()
    redis_for_everything.stop()
    assert widget.say("during the outage").status_code == 201

    redis_for_everything.start()
    assert widget.say("after the outage").status_code == 201

    visitor = ChatVisitor.objects.get()
    counted = caches["default"].get(f"chat:rate:{visitor.public_id.hex}")
    assert counted == 1  # the message after the outage, counted in Redis
    assert Message.objects.count() == 2


def test_webhooks_answer_and_keep_the_raw_event_while_the_broker_is_down(
    redis_for_everything, transactional_db, api_channel, integration_client
):
    services_or_skip(need_postgres=True)
    sms_channel = sms_channel_create()
    redis_for_everything.stop()

    api_answer = integration_client.post(
        f"/api/v1/channels/{api_channel.pk}/messages",
        data=json.dumps({"id": "outage-1", "sender": {"external_id": "u-1"}, "text": "Anyone there?"}),
        content_type="application/json",
    )
    sms_answer = post_twilio(integration_client, inbound_path(sms_channel), twilio_payload())

    assert api_answer.status_code == 202, api_answer.content
    assert sms_answer.status_code == 200, sms_answer.content
    # Stored, waiting for the sweep that enqueues what the broker did not take
    assert sorted(InboundEvent.objects.values_list("channel__kind", "status")) == [
        ("api", InboundEvent.Status.RECEIVED),
        ("sms", InboundEvent.Status.RECEIVED),
    ]
    assert Message.objects.count() == 0


def test_the_sms_send_rate_holds_in_the_worker_while_redis_is_down(redis_for_everything, caplog):
    sender = f"+1415555{uuid.uuid4().int % 10_000:04d}"
    redis_for_everything.stop()

    first = sms_send_slot_take(sender=sender, rate_per_second=1.0)
    second = sms_send_slot_take(sender=sender, rate_per_second=1.0)

    assert first == 0.0
    assert 0.0 < second <= 1.0
    assert sms_rate_limit.redis_outage.is_skipping()
    assert any(record.levelno == logging.WARNING for record in caplog.records)


def test_an_agent_reads_and_answers_a_chat_while_redis_is_down_and_the_visitor_finds_the_answer(
    redis_for_everything, chat_channel, settings
):
    """Every Redis use on the agent's side at once: presence on the ticket page (who else views it, is the visitor
    still there), the push of the reply to the visitor and the agents, and its delivery task on the broker."""
    services_or_skip(need_postgres=True)
    settings.HELPDESK = {**settings.HELPDESK, "STALLED_AFTER_SECONDS": 0}
    widget = Widget(chat_channel)
    widget.start()
    assert widget.say("Where is my parcel?").status_code == 201
    ticket = Ticket.objects.get()
    agent = AgentFactory()
    console, api = Client(), APIClient()
    console.force_login(agent)
    api.force_authenticate(agent)

    redis_for_everything.stop()
    page = console.get(f"/console/tickets/{ticket.pk}/")
    answer = api.post(f"/api/v1/tickets/{ticket.pk}/replies", {"text": "It left today."}, format="json")
    history = widget.get("messages")
    config = widget.get("config")

    assert page.status_code == 200
    assert answer.status_code == 201, answer.content
    assert [message["text"] for message in history.json()["messages"]] == ["Where is my parcel?", "It left today."]
    assert config.status_code == 200
    assert config.json()["agents_online"] is False  # presence unknown while Redis is away: nobody claimed online
    delivery = Delivery.objects.get(message__text="It left today.")
    # Its send task could not reach the broker: the delivery waits, queued, for beat's sweep
    assert delivery.status == Delivery.Status.QUEUED
    redis_for_everything.start()
    assert stalled_delivery_ids() == [delivery.pk]
