"""Two tasks for one inbound event at the same moment, on PostgreSQL: beat's sweep enqueued the event again while
its first task was still in the broker, or the broker delivered a task again after a lost connection. The first
takes the message in; the second waits for it and finds the event processed."""

import json
import threading

import pytest
from django.db import connection

from channels_app.models import InboundEvent
from channels_app.providers.api.adapter import ApiChannelAdapter
from channels_app.services.inbound_process import inbound_event_process
from channels_app.services.inbound_receive import inbound_event_receive
from tests.conftest import services_or_skip
from tickets.models import Message, Ticket

pytestmark = pytest.mark.services

PAYLOAD = {"id": "twice-1", "sender": {"external_id": "u-7"}, "text": "Hello"}


def test_two_tasks_for_one_event_at_once_take_it_in_once(transactional_db, api_channel, monkeypatch):
    services_or_skip(need_postgres=True)
    # Stored, its task not run (both tasks below are it).
    event, _ = inbound_event_receive(
        channel=api_channel,
        provider_id="twice-1",
        raw=json.dumps(PAYLOAD).encode(),
        content_type="application/json",
        enqueue=False,
    )
    # Both tasks have read the event (not processed yet) and parsed it before either takes the message in.
    both_parsed = threading.Barrier(2, timeout=10)
    parse = ApiChannelAdapter.parse

    def parse_then_wait(self, **kwargs):
        messages = parse(self, **kwargs)
        both_parsed.wait()
        return messages

    monkeypatch.setattr(ApiChannelAdapter, "parse", parse_then_wait)
    results = {}

    def task(name: str) -> None:
        try:
            results[name] = inbound_event_process(event_id=event.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=task, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    outcomes = sorted((len(result), [item.is_new_message for item in result]) for result in results.values())
    assert outcomes == [(0, []), (1, [True])]  # one took it in, the other did nothing at all
    event.refresh_from_db()
    assert (event.status, event.reason) == (InboundEvent.Status.PROCESSED, "")
    assert list(Message.objects.values_list("provider_id", flat=True)) == ["twice-1"]
    assert Ticket.objects.count() == 1
