"""Frames that are not requests, on real websockets (uvicorn with production's ``--ws-max-size``, the Redis channel
layer), to the agent's and the visitor's socket alike: each gets an error frame or a close with a close code
(realtime/frames.py), never an exception in the ASGI application, and a closed connection leaves no presence
behind."""

import json
import logging

import pytest

from channels_app.models import Channel
from channels_app.services.channels import channel_create
from chat.models import ChatVisitor
from realtime.frames import MAX_FRAME_CHARS, MAX_JSON_DEPTH, SERVER_MAX_FRAME_BYTES, json_depth_exceeds
from realtime.presence import agent_ids_online, ticket_viewers, visitor_is_online
from tests.factories import AgentFactory, TicketFactory
from tests.realtime.fixtures import SHOP_ORIGIN
from tests.realtime.live import agent_connect, eventually, visitor_connect, visitor_start

pytestmark = [pytest.mark.django_db(transaction=True)]

BAD_JSON = {
    "not JSON": "{not json",
    "empty text": "",
    "a lone bracket": "[",
    "nested 4,000 deep": "[" * 4000 + "]" * 4000,
    "valid JSON nested too deep": json.dumps({"type": "subscribe", "x": [[[[[[[[[1]]]]]]]]]}),
    "an integer of 5,000 digits": "1" * 5000,
}
CLOSING = {
    "binary": (b"\x00\x01\x02", 1003),
    "a megabyte": ("x" * 1_000_000, 1009),
    "over the consumer's limit": (json.dumps({"type": "typing", "pad": "x" * MAX_FRAME_CHARS}), 1009),
}


@pytest.fixture
def asgi_errors():
    """What uvicorn logs as errors (an exception in the application is "Exception in ASGI application")."""
    records = []
    handler = logging.Handler(level=logging.ERROR)
    handler.emit = records.append
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture
def agent_on_a_ticket(desk):
    """An agent's socket, viewing a ticket."""
    agent, ticket = AgentFactory(), TicketFactory()
    socket = agent_connect(desk, agent)
    socket.send({"type": "subscribe", "ticket_id": ticket.pk})
    assert socket.receive()["type"] == "viewers"
    assert ticket_viewers(ticket_id=ticket.pk) != []
    return socket, ticket


@pytest.fixture
def visitor_online(desk):
    channel = channel_create(kind=Channel.Kind.CHAT, name="Shop chat", settings={"allowed_origins": [SHOP_ORIGIN]})
    token = visitor_start(desk, channel)
    socket = visitor_connect(desk, channel, token)
    assert socket.receive()["type"] == "presence"
    visitor = ChatVisitor.objects.get()
    assert visitor_is_online(visitor_public_id=visitor.public_id)
    return socket, visitor


@pytest.mark.parametrize("frame", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_a_frame_that_is_not_json_gets_an_error_frame_and_the_agent_socket_goes_on(
    agent_on_a_ticket, frame, asgi_errors
):
    socket, ticket = agent_on_a_ticket

    socket.send_raw(frame)

    error = socket.receive()
    assert (error["type"], error["code"]) == ("error", "invalid_json")
    # the connection still works, and still follows the ticket
    socket.send({"type": "dance", "ticket_id": ticket.pk})
    assert socket.receive()["code"] == "bad_request"
    assert len(ticket_viewers(ticket_id=ticket.pk)) == 1
    socket.close()
    assert asgi_errors == []


@pytest.mark.parametrize("frame", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_a_frame_that_is_not_json_gets_an_error_frame_on_the_visitor_socket(visitor_online, frame, asgi_errors):
    socket, _visitor = visitor_online

    socket.send_raw(frame)

    error = socket.receive()
    assert (error["type"], error["code"]) == ("error", "invalid_json")
    socket.send({"type": "dance"})
    assert socket.receive()["code"] == "bad_request"
    socket.close()
    assert asgi_errors == []


@pytest.mark.parametrize(("frame", "code"), CLOSING.values(), ids=CLOSING.keys())
def test_a_binary_or_oversized_frame_closes_the_agent_socket_with_its_code_and_no_viewer_stays(
    agent_on_a_ticket, frame, code, asgi_errors
):
    socket, ticket = agent_on_a_ticket

    socket.send_raw(frame)

    assert socket.closed_code() == code
    eventually(lambda: ticket_viewers(ticket_id=ticket.pk) == [] and agent_ids_online() == set())
    assert asgi_errors == []


@pytest.mark.parametrize(("frame", "code"), CLOSING.values(), ids=CLOSING.keys())
def test_a_binary_or_oversized_frame_closes_the_visitor_socket_with_its_code(visitor_online, frame, code, asgi_errors):
    socket, visitor = visitor_online

    socket.send_raw(frame)

    assert socket.closed_code() == code
    eventually(lambda: not visitor_is_online(visitor_public_id=visitor.public_id))
    assert asgi_errors == []


def test_a_request_whose_handling_fails_closes_with_1011_and_leaves_no_viewer(
    agent_on_a_ticket, monkeypatch, asgi_errors, caplog
):
    socket, ticket = agent_on_a_ticket

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("realtime.consumers.ticket_agent_read", broken)
    socket.send({"type": "read", "ticket_id": ticket.pk, "up_to": 1})

    assert socket.closed_code() == 1011
    eventually(lambda: ticket_viewers(ticket_id=ticket.pk) == [] and agent_ids_online() == set())
    assert asgi_errors == []
    assert [record.levelno for record in caplog.records if record.getMessage() == "realtime.frame_failed"] == [
        logging.ERROR
    ]


def test_the_servers_frame_limit_is_the_one_every_start_command_sets():
    # uvicorn's default is 16 MiB: each way the desk is started sets the limit the consumers are written for.
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    expected = f'"--ws-max-size", "{SERVER_MAX_FRAME_BYTES}"'
    for name in ("Dockerfile", "docker-compose.yml"):
        assert expected in (root / name).read_text(), name
    demo = (root / "scripts" / "run_demo.py").read_text()
    assert f'"--ws-max-size",\n            "{SERVER_MAX_FRAME_BYTES}",' in demo
    assert MAX_FRAME_CHARS < SERVER_MAX_FRAME_BYTES


@pytest.mark.parametrize(
    ("text", "exceeds"),
    [
        ('{"type": "typing"}', False),
        ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, False),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), True),
        (json.dumps({"text": "[" * 100}), False),  # brackets in a string are text
        (json.dumps({"text": 'a "quoted" \\ [[[[[[[[[[ '}), False),
        ("[" * 5 + "]" * 5 + "[" * 5 + "]" * 5, False),  # many brackets, side by side
    ],
)
def test_the_depth_check_counts_nesting_outside_strings(text, exceeds):
    assert json_depth_exceeds(text, MAX_JSON_DEPTH) is exceeds
