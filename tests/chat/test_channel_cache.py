"""The widget API's per-process cache of chat channels (chat.channel_cache)."""

import pytest

from channels_app.models import Channel
from chat import channel_cache
from chat.channel_cache import chat_channel_active_get, chat_channel_cache_clear
from tests.chat.conftest import SHOP_ORIGIN, Widget

pytestmark = pytest.mark.django_db


def test_a_channel_is_read_once_within_the_cache_time(chat_channel, django_assert_num_queries):
    with django_assert_num_queries(1):
        first = chat_channel_active_get(public_key=chat_channel.public_key)
        second = chat_channel_active_get(public_key=chat_channel.public_key)

    assert first.pk == second.pk == chat_channel.pk
    assert first.settings["allowed_origins"] == [SHOP_ORIGIN]


def test_each_caller_gets_its_own_copy(chat_channel):
    first = chat_channel_active_get(public_key=chat_channel.public_key)
    first.settings["allowed_origins"].append("https://evil.example")
    first.name = "changed by one request"

    second = chat_channel_active_get(public_key=chat_channel.public_key)

    assert second.settings["allowed_origins"] == [SHOP_ORIGIN]
    assert second.name == "Shop chat"


def test_an_unknown_key_is_remembered_as_unknown(db, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert chat_channel_active_get(public_key="pk_made_up") is None
        assert chat_channel_active_get(public_key="pk_made_up") is None


def test_a_channel_saved_in_this_process_is_read_again_at_once(chat_channel):
    widget = Widget(chat_channel)
    assert widget.get("config").status_code == 200

    # Saved as the console saves it: this process forgets what it read
    chat_channel.settings = {**chat_channel.settings, "allowed_origins": ["https://elsewhere.example"]}
    chat_channel.save(update_fields=["settings"])

    assert widget.get("config").status_code == 403


def test_a_change_made_elsewhere_is_seen_once_the_cache_time_has_passed(chat_channel, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(channel_cache.time, "monotonic", lambda: now[0])
    widget = Widget(chat_channel)
    assert widget.get("config").status_code == 200

    # Another process deactivates the channel (no signal reaches this one)
    Channel.objects.filter(pk=chat_channel.pk).update(is_active=False)

    now[0] += 4.9
    assert widget.get("config").status_code == 200
    now[0] += 0.2
    assert widget.get("config").status_code == 404


def test_zero_seconds_reads_the_channel_every_time(chat_channel, django_assert_num_queries, settings):
    settings.HELPDESK = {**settings.HELPDESK, "CHAT_CHANNEL_CACHE_SECONDS": 0}
    with django_assert_num_queries(2):
        chat_channel_active_get(public_key=chat_channel.public_key)
        chat_channel_active_get(public_key=chat_channel.public_key)


def test_the_cache_holds_a_bounded_number_of_keys(db, monkeypatch):
    monkeypatch.setattr(channel_cache, "MAX_ENTRIES", 3)
    for number in range(5):
        chat_channel_active_get(public_key=f"pk_{number}")

    assert len(channel_cache._entries) <= 3
    chat_channel_cache_clear()
    assert channel_cache._entries == {}
