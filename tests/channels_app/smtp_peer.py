"""A real SMTP peer for the email tests: aiosmtpd on a loopback port, recording what it accepted and answering
with the replies a test tells it to."""

import email
import email.policy
import socket
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)


@dataclass
class RecordingHandler:
    """Answers RCPT and DATA with the replies it is told to, in turn (the last one repeats); keeps accepted mail."""

    rcpt_replies: list[str] = field(default_factory=lambda: ["250 OK"])
    data_replies: list[str] = field(default_factory=lambda: ["250 OK"])
    received: list[Received] = field(default_factory=list)
    refused_data: int = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = _next(self.rcpt_replies)
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        reply = _next(self.data_replies)
        if reply.startswith("250"):
            self.received.append(
                Received(mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), content=envelope.content)
            )
        else:
            self.refused_data += 1
        return reply


def _next(replies: list[str]) -> str:
    return replies.pop(0) if len(replies) > 1 else replies[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp():
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()
