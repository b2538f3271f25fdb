"""What a visitor's chat message costs the server: a fixed number of queries, whatever the conversation's length,
so the customer-to-agent latency the benchmark measures (``benchmarks/chat_latency.py``) cannot creep back up."""

import pytest

from agents.models import Team
from channels_app.models import Channel, InboundEvent
from chat.models import ChatVisitor
from chat.services.messages import visitor_message_post
from tickets.models import Message, Ticket

# Each is a round trip of the request thread while the visitor waits (the test's savepoints stand for the
# BEGIN/COMMIT pairs of a real request):
#   the event stored: savepoint, insert, release (its attempt counted in the insert);
#   taken in, in one transaction with no savepoint per message (a clash rolls it back and takes the event again):
#   savepoint, the sender's customer found by identity and touched (which locks it), the open ticket found and
#   touched, the message (the attachments are the ones just stored), the event marked processed, release; after
#   commit and the agents' push, the chat visitors to push to; then the visitor seen (at most once a minute, not
#   here).
MESSAGE_POST_QUERIES = 10
# A visitor's first message opens the ticket, already routed to the channel's team (no query: the channel row
# holds it) and its first events (created, routed) in one insert: the ticket found missing, the ticket and its
# events inserted (3 more than a continued message's touch), then after commit the routing task for later rules
# (run here in the process: savepoint, the ticket locked and found routed, release).
FIRST_MESSAGE_QUERIES = MESSAGE_POST_QUERIES + 3 + 3
# The widget API's own: the visitor (by token); the channel comes from the process's cache (chat.channel_cache),
# filled by the first message; the answer reuses what was loaded.
API_QUERIES = 1


@pytest.mark.parametrize("earlier_messages", [1, 5])
def test_a_visitors_message_costs_a_fixed_number_of_queries(
    visitor_widget, earlier_messages, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    for number in range(earlier_messages):
        assert visitor_widget.say(f"earlier {number}").status_code == 201
    visitor = ChatVisitor.objects.select_related("channel").get()

    with (
        django_assert_max_num_queries(MESSAGE_POST_QUERIES),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        message, created = visitor_message_post(visitor=visitor, client_id="cost-1", text="where is my parcel?")

    assert created is True
    assert message.text == "where is my parcel?"
    assert Message.objects.filter(ticket=message.ticket, direction=Message.Direction.INBOUND).count() == (
        earlier_messages + 1
    )
    assert Ticket.objects.count() == 1
    assert InboundEvent.objects.get(provider_id__endswith=":cost-1").attempts == 1
    # After commit: the push to the agents, then the one to the visitors (their query after it); no routing task.
    assert [callback.func.__name__ for callback in callbacks] == ["_send_from_sync", "_audiences_publish"]


def test_a_visitors_first_message_opens_a_routed_ticket_at_a_fixed_cost(
    visitor_widget, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    team = Team.objects.create(name="Billing")
    Channel.objects.filter(pk=visitor_widget.channel.pk).update(default_team=team)
    visitor = ChatVisitor.objects.select_related("channel").get()

    with (
        django_assert_max_num_queries(FIRST_MESSAGE_QUERIES),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        message, created = visitor_message_post(visitor=visitor, client_id="first", text="hello")

    assert created is True
    assert Ticket.objects.values_list("team_id", flat=True).get(pk=message.ticket_id) == team.pk
    [agents_push] = callbacks[0].keywords["publications"]
    assert agents_push.audience == {"team_id": team.pk, "assignee_id": None}


def test_the_widget_post_costs_the_service_and_the_api_checks_only(
    visitor_widget, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    assert visitor_widget.say("first").status_code == 201

    with django_assert_max_num_queries(MESSAGE_POST_QUERIES + API_QUERIES), django_capture_on_commit_callbacks():
        response = visitor_widget.say("second", client_id="cost-2")

    assert response.status_code == 201
    assert response.json()["text"] == "second"
    assert response.json()["attachments"] == []


def test_the_same_client_id_again_is_one_message_and_changes_nothing(visitor_widget):
    first = visitor_widget.say("only once", client_id="same")
    visitor = ChatVisitor.objects.select_related("customer").get()
    seen_before = visitor.customer.last_seen_at
    ticket_before = Ticket.objects.values("version", "last_message_at").get()

    again = visitor_widget.say("only once", client_id="same")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Message.objects.count() == 1
    assert Ticket.objects.values("version", "last_message_at").get() == ticket_before
    visitor.customer.refresh_from_db()
    assert visitor.customer.last_seen_at == seen_before
