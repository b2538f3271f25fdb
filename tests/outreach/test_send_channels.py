"""A message the desk starts, through the real outbound path on each channel: email to the real SMTP peer, SMS to
Twilio's REST API (mocked with ``responses`` under the real twilio client), a chat card to a visitor."""

import pytest
import responses
from django.test import Client
from django.urls import reverse

from channels_app.models import Delivery
from channels_app.types import InboundIdentity, InboundMessage
from chat.models import ChatVisitor
from chat.selectors import chat_message_data
from outreach.models import OutreachMessage
from outreach.services.send import outreach_send
from realtime.presence import presence_leave, visitor_presence_join
from tests.channels_app.sms_fixtures import ACCOUNT_SID, CHANNEL_NUMBER, CUSTOMER_PHONE
from tests.factories import AdminFactory, AgentFactory, TicketFactory
from tests.outreach.conftest import CUSTOMER_ADDRESS, chat_identity_add, template_create
from tickets.models import Message, Ticket
from tickets.services.ingest import message_ingest
from tickets.services.replies import reply_create
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db

MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
MESSAGE_SID = "SM2f0e8ae6ade43cb3c0ce4525424e404f"


def twilio_created(body: str) -> dict:
    return {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": body,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": CHANNEL_NUMBER,
        "num_segments": "1",
        "sid": MESSAGE_SID,
        "status": "queued",
        "to": CUSTOMER_PHONE,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{MESSAGE_SID}.json",
    }


def test_a_notice_by_email_reaches_the_smtp_peer_with_one_click_unsubscribe(
    smtp, mailbox, customer, notice_template, settings, django_capture_on_commit_callbacks
):
    # Given a desk served over https (RFC 8058 one-click needs an https URL)
    settings.PUBLIC_BASE_URL = "https://desk.example"

    # When the desk writes first by email
    with django_capture_on_commit_callbacks(execute=True):
        result = outreach_send(
            customer=customer,
            purpose="notice",
            template=notice_template,
            context={"team.name": "Billing"},
            channel_preference=[mailbox],
            key="routed:1",
        )

    # Then one email reached the peer: not a reply, marked auto-generated, with both unsubscribe headers
    assert result.status == OutreachMessage.Status.SENT
    [received] = smtp.received
    email = received.message
    assert received.rcpt_tos == [CUSTOMER_ADDRESS]
    assert email["Subject"] == f"Your ticket is with Billing [#{result.ticket_id}]"
    assert email["Auto-Submitted"] == "auto-generated"
    url = email["List-Unsubscribe"].strip().strip("<>")
    assert url.startswith("https://desk.example/outreach/unsubscribe/")
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = email.get_body(("plain",)).get_content()
    assert text.startswith("Hello Ann, your ticket is now with Billing.")
    assert f"To stop receiving updates about your requests by email: {url}" in text
    html = email.get_body(("html",)).get_content()
    assert "<b>Billing</b>" in html and f'href="{url}"' in html
    # And it went the ordinary way: a message on a desk-started (solved) ticket and a sent delivery
    message = Message.objects.get(pk=result.message_id)
    assert (message.direction, message.channel_id, message.ticket_id) == ("outbound", mailbox.pk, result.ticket_id)
    ticket = Ticket.objects.get(pk=result.ticket_id)
    assert (ticket.status, ticket.subject, ticket.customer_id) == ("solved", "Your ticket is with Billing", customer.pk)
    assert Delivery.objects.get(message=message).status == Delivery.Status.SENT
    # And the customer's timeline says so
    event = TimelineEvent.objects.get(type=TimelineEvent.Type.OUTREACH_SENT)
    assert (event.customer_id, event.ticket_id, event.params["channel_id"]) == (customer.pk, ticket.pk, mailbox.pk)


def test_a_reply_still_carries_no_unsubscribe_header(smtp, mailbox, customer, django_capture_on_commit_callbacks):
    ticket = TicketFactory(customer=customer, channel=mailbox, subject="Refund")
    with django_capture_on_commit_callbacks(execute=True):
        reply_create(ticket=ticket, author=AgentFactory(), text="On its way.", channel=mailbox)

    [received] = smtp.received
    assert received.message["List-Unsubscribe"] is None
    assert received.message["Subject"] == f"Re: Refund [#{ticket.pk}]"


@responses.activate
def test_an_incident_by_sms_is_posted_to_twilio(texts, customer, django_capture_on_commit_callbacks):
    template = template_create("incident")
    responses.post(MESSAGES_URL, json=twilio_created("Checkout down: investigating"), status=201)

    with django_capture_on_commit_callbacks(execute=True):
        result = outreach_send(
            customer=customer,
            purpose="incident",
            template=template,
            context={"incident.title": "Checkout down", "incident.status": "investigating"},
            channel_preference=[texts],
            key="incident:7:update:1",
        )

    assert result.status == "sent"
    [call] = responses.calls
    form = dict(item.split("=", 1) for item in call.request.body.split("&"))
    assert (form["To"], form["Body"]) == ("%2B14155550100", "Checkout+down%3A+investigating")
    delivery = Delivery.objects.get(message_id=result.message_id)
    assert (delivery.status, delivery.provider_message_id) == (Delivery.Status.SENT, MESSAGE_SID)
    # Status callbacks find it like any SMS: the callback URL names the message
    assert reverse("sms_webhooks:twilio-status", args=[texts.public_key]) in form["StatusCallback"].replace("%2F", "/")


def test_a_notice_to_a_visitor_on_the_widget_is_a_chat_card(chat_channel, customer, notice_template):
    identity = chat_identity_add(customer)
    visitor = ChatVisitor.objects.create(channel=chat_channel, customer=customer, identity=identity)
    presence = visitor_presence_join(visitor_public_id=visitor.public_id, connection_id="outreach-test")
    try:
        result = outreach_send(
            customer=customer,
            purpose="notice",
            template=notice_template,
            context={"team.name": "Billing"},
            channel_preference=[chat_channel],
            key="routed:chat",
        )
    finally:
        presence_leave(entries=[presence])

    assert (result.status, result.channel_id) == ("sent", chat_channel.pk)
    message = Message.objects.get(pk=result.message_id)
    assert (message.text, message.html, message.identity_id) == ("Your ticket is now with Billing.", "", identity.pk)
    assert "list_unsubscribe" not in message.metadata
    # The widget gets it as a card labelled by its purpose, over REST and the websocket alike.
    assert chat_message_data(message=message, channel=chat_channel)["card"] == "notice"


def test_the_customers_answer_to_a_desk_started_email_reopens_its_ticket(
    smtp, mailbox, customer, notice_template, django_capture_on_commit_callbacks
):
    # Given a notice sent by email on a desk-started (solved) ticket
    with django_capture_on_commit_callbacks(execute=True):
        result = outreach_send(
            customer=customer,
            purpose="notice",
            template=notice_template,
            context={"team.name": "Billing"},
            channel_preference=[mailbox],
            key="routed:answered",
        )
    [received] = smtp.received
    our_id = received.message["Message-ID"]

    # When the customer answers it
    answer = message_ingest(
        channel=mailbox,
        inbound=InboundMessage(
            provider_id="<answer-1@example.com>",
            sender=InboundIdentity(kind="email", value=CUSTOMER_ADDRESS),
            subject=f"Re: {received.message['Subject']}",
            text="Thanks, but I still need help.",
            in_reply_to=(our_id,),
        ),
    )

    # Then the answer threads onto that ticket and reopens it
    assert answer.ticket.pk == result.ticket_id
    assert Ticket.objects.get(pk=result.ticket_id).status == Ticket.Status.OPEN


def test_the_ticket_page_of_a_desk_started_ticket_says_what_the_desk_did(mailbox, customer, notice_template):
    result = outreach_send(
        customer=customer,
        purpose="notice",
        template=notice_template,
        context={"team.name": "Billing"},
        channel_preference=[mailbox],
        key="routed:page",
    )
    client = Client()
    client.force_login(AdminFactory())

    page = client.get(f"/console/tickets/{result.ticket_id}/").content.decode()

    assert f"The desk opened ticket #{result.ticket_id} to write to the customer first (notice)." in page
    assert "The desk wrote to the customer first: notice “notice template”." in page
