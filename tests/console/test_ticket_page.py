"""The ticket page: the customer's whole history on every channel, the context panel, the reply box."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels_app.models import Channel, Delivery
from chat.models import ChatVisitor
from customers.models import CustomerIdentity
from realtime.presence import presence_leave, visitor_presence_join
from tests.factories import (
    AgentFactory,
    CannedResponseFactory,
    ChannelFactory,
    ContextEventFactory,
    CustomerFactory,
    IdentityFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
    TimelineEventFactory,
)
from tickets.models import Message
from timeline.models import TimelineEvent

pytestmark = pytest.mark.django_db


def email_channel() -> Channel:
    return ChannelFactory(kind=Channel.Kind.EMAIL, name="Support mail", address="support@desk.example")


def sms_channel() -> Channel:
    return ChannelFactory(kind=Channel.Kind.SMS, name="Support SMS", address="+15005550006", provider="twilio")


def customer_on_two_channels():
    """María wrote by email, then texted from her phone: one ticket, two channels."""
    customer = CustomerFactory(
        name="María Pérez",
        plan="enterprise",
        lifetime_value=Decimal("1234.50"),
        company="Acme Ltd",
        locale="es-ES",
        time_zone="Europe/Madrid",
        attributes={"vip": "yes", "account_manager": "Jo"},
    )
    email_identity = IdentityFactory(customer=customer, kind="email", value="maria@example.com")
    phone_identity = IdentityFactory(customer=customer, kind="phone", value="+34600111222")
    email, sms = email_channel(), sms_channel()
    ticket = TicketFactory(customer=customer, channel=email, subject="Order A-1 late")
    now = timezone.now()
    first = MessageFactory(ticket=ticket, channel=email, identity=email_identity, text="My order A-1 has not arrived.")
    second = MessageFactory(ticket=ticket, channel=sms, identity=phone_identity, text="Any news on A-1?")
    Message.objects.filter(pk=first.pk).update(created_at=now - timedelta(minutes=10))
    Message.objects.filter(pk=second.pk).update(created_at=now - timedelta(minutes=5))
    customer.last_channel = sms
    customer.save(update_fields=["last_channel"])
    return ticket, first, second


def timeline_ids(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-message-id="(\d+)" data-channel="(\w+)"', html)


def test_page_shows_the_customers_email_and_sms_messages_each_marked_with_its_channel(console_client):
    ticket, first, second = customer_on_two_channels()

    response = console_client.get(f"/console/tickets/{ticket.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    # Newest first, each with its channel
    assert timeline_ids(html) == [(str(second.pk), "sms"), (str(first.pk), "email")]
    assert "My order A-1 has not arrived." in html
    assert "Any news on A-1?" in html
    assert 'class="badge badge-sms"' in html and 'class="badge badge-email"' in html
    assert f'<div id="ticket-page" data-ticket-id="{ticket.pk}" data-customer-id="{ticket.customer_id}"' in html
    assert f'data-last-message-id="{second.pk}"' in html


def test_the_context_panel_shows_identities_profile_attributes_recent_activity_and_other_open_tickets(console_client):
    ticket, _, _ = customer_on_two_channels()
    customer = ticket.customer
    older = ContextEventFactory(
        customer=customer, type="cart.updated", payload={"items": 2}, occurred_at=timezone.now() - timedelta(days=2)
    )
    newer = ContextEventFactory(customer=customer, type="order.placed", payload={"order_id": "A-1"})
    other_open = TicketFactory(customer=customer, subject="Invoice copy")
    TicketFactory(customer=customer, subject="Old solved one", status="solved")

    html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()

    panel = html[html.index('<aside id="context-panel"') : html.index("</aside>")]
    assert "maria@example.com" in panel and "+34600111222" in panel
    assert "enterprise" in panel and "1234.50" in panel and "Acme Ltd" in panel
    assert "es-ES" in panel and "Europe/Madrid" in panel
    assert "account_manager" in panel and "Jo" in panel
    assert panel.index('data-context-type="order.placed"') < panel.index('data-context-type="cart.updated"')
    assert "order_id: A-1" in panel
    assert f'href="/console/tickets/{other_open.pk}/"' in panel
    assert "Old solved one" not in panel
    assert older.pk and newer.pk


def test_messages_of_the_customers_other_tickets_are_on_the_timeline_marked_with_their_ticket(console_client):
    ticket, _, _ = customer_on_two_channels()
    earlier = TicketFactory(customer=ticket.customer, subject="Earlier question", status="solved")
    old_message = MessageFactory(ticket=earlier, channel=ticket.channel, text="Earlier I asked about returns")

    html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()

    item = html[html.index(f'data-message-id="{old_message.pk}"') :]
    item = item[: item.index("</li>")]
    assert f'<a href="/console/tickets/{earlier.pk}/">ticket #{earlier.pk}</a>' in item
    assert "Earlier I asked about returns" in item


def test_events_read_as_sentences_and_notes_and_delivery_status_are_shown(console_client):
    ticket, _, _ = customer_on_two_channels()
    bea = AgentFactory(username="bea", profile__display_name="Bea")
    TimelineEventFactory(
        ticket=ticket,
        type=TimelineEvent.Type.ASSIGNED,
        actor_kind="agent",
        actor=bea,
        params={"from": None, "to": bea.pk},
    )
    TimelineEventFactory(ticket=ticket, type=TimelineEvent.Type.SMS_OPTED_OUT, actor_kind="customer", params={})
    note = MessageFactory(ticket=ticket, channel=None, direction="note", author=bea, text="Check the warehouse")
    reply = MessageFactory(ticket=ticket, channel=ticket.channel, direction="outbound", author=bea, text="On its way")
    Delivery.objects.create(message=reply, channel=ticket.channel, recipient="maria@example.com", status="failed")

    html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()

    assert "Bea assigned the ticket to Bea." in html
    assert "The customer opted out of SMS (texted STOP)." in html
    assert f'data-message-id="{note.pk}" data-channel="note"' in html
    assert 'class="badge badge-note">Internal note<' in html
    assert 'class="delivery delivery-failed"' in html


def test_attachments_link_to_the_attachment_download(console_client):
    ticket, first, _ = customer_on_two_channels()
    attachment = first.attachments.create(filename="invoice.pdf", content_type="application/pdf", size=10, sha256="0")

    html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()

    assert f'href="/api/v1/attachments/{attachment.pk}"' in html
    assert "invoice.pdf" in html


def test_message_content_never_reaches_the_page_as_markup(console_client):
    customer = CustomerFactory(name='<script>alert("name")</script>', attributes={"<b>k</b>": "<img src=x onerror=1>"})
    IdentityFactory(customer=customer)
    ticket = TicketFactory(customer=customer, subject="<script>alert('subject')</script>")
    MessageFactory(
        ticket=ticket,
        text='<script>alert(1)</script><img src=x onerror="alert(2)">',
        html='<img src=x onerror="alert(3)"><script>alert(4)</script>',
    )
    ContextEventFactory(customer=customer, type="<script>t</script>", payload={"x": "<svg onload=alert(5)>"})
    CannedResponseFactory(title="<script>c</script>", body='<img src=x onerror="alert(6)"> {{ customer.name }}')

    html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()

    assert "<script>alert" not in html
    assert "<img src=x onerror" not in html and '<img src="x" onerror' not in html
    assert "<svg onload" not in html
    assert "<script>t</script>" not in html and "<script>c</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_reply_box_offers_channels_that_reach_the_customer_defaulting_to_the_last_used(console_client):
    ticket, _, _ = customer_on_two_channels()
    ChannelFactory(kind=Channel.Kind.EMAIL, name="Disabled mail", address="off@desk.example", is_active=False)
    ChannelFactory(kind=Channel.Kind.CHAT, name="Widget")  # the customer has no chat identity

    html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()

    select = html[html.index('<select id="reply-channel"') : html.index("</select>", html.index('id="reply-channel"'))]
    names = re.findall(r">([^<>]+) \((?:Email|SMS|Live chat|API)\)", select)
    assert names == ["Support SMS", "Support mail"]
    assert re.search(r'data-kind="sms"[^>]*selected', select)
    assert "Disabled mail" not in select and "Widget" not in select
    # SMS shows the segment count; Cc and attachments belong to email and start hidden
    assert re.search(r'<p class="reply-hint" data-show-for="sms" id="sms-segments"\s+aria-live', html)
    assert re.search(r'data-show-for="email"\s+hidden', html)
    assert 'name="last_seen_message_id"' in html and 'name="idempotency_key"' in html


def test_chat_shows_whether_the_customer_is_online(console_client, settings):
    customer = CustomerFactory(name="Vis")
    chat = ChannelFactory(kind=Channel.Kind.CHAT, name="Widget")
    identity = IdentityFactory(customer=customer, kind=CustomerIdentity.Kind.CHAT_VISITOR, value="visitor-1")
    ticket = TicketFactory(customer=customer, channel=chat)
    MessageFactory(ticket=ticket, channel=chat, identity=identity)
    customer.last_channel = chat
    customer.save(update_fields=["last_channel"])
    visitor = ChatVisitor.objects.create(channel=chat, customer=customer, identity=identity)
    entry = visitor_presence_join(visitor_public_id=visitor.public_id, connection_id="c1")
    try:
        html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()
    finally:
        presence_leave(entries=[entry])
    assert "Customer is online" in html
    assert re.search(r'data-kind="chat"\s+data-online="1"', html)

    html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()
    assert "Customer is online" not in html


def test_canned_responses_of_the_agents_teams_and_global_ones_are_offered_filled_in(console_client, console_agent):
    team, other_team = TeamFactory(name="Billing"), TeamFactory(name="Sales")
    console_agent.agent_profile.teams.set([team])
    console_agent.agent_profile.display_name = "Dee"
    console_agent.agent_profile.save()
    ticket, _, _ = customer_on_two_channels()
    CannedResponseFactory(title="Global", body="Hi {{ customer.first_name }}, ticket {{ ticket.id }}. {{ agent.name }}")
    CannedResponseFactory(title="Team one", team=team, body="Team {{ unknown.thing }}")
    CannedResponseFactory(title="Other team", team=other_team)
    CannedResponseFactory(title="Retired", is_active=False)

    html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()

    picker = html[html.index('<select id="canned-picker"') : html.index("</select>", html.index('id="canned-picker"'))]
    assert re.findall(r'data-text="[^"]*">([^<]+)</option>', picker) == ["Global", "Team one"]
    assert f'data-text="Hi María, ticket {ticket.pk}. Dee"' in picker
    assert 'data-text="Team {{ unknown.thing }}"' in picker


def test_a_ticket_of_another_team_is_a_404_and_so_is_a_missing_one(console_client):
    hidden = TicketFactory(team=TeamFactory())

    assert console_client.get(f"/console/tickets/{hidden.pk}/").status_code == 404
    assert console_client.get(f"/console/tickets/{hidden.pk + 1000}/").status_code == 404


def test_a_merged_ticket_redirects_to_the_one_it_was_merged_into(console_client):
    target = TicketFactory()
    source = TicketFactory(customer=target.customer, merged_into=target, status="closed")

    response = console_client.get(f"/console/tickets/{source.pk}/", follow=True)

    assert response.redirect_chain == [(f"/console/tickets/{target.pk}/", 302)]
    assert f"Ticket #{source.pk} was merged into #{target.pk}." in response.content.decode()


def test_load_earlier_brings_the_next_page_of_the_timeline_through_htmx(console_client):
    ticket = TicketFactory()
    channel = ChannelFactory()
    now = timezone.now()
    messages = [MessageFactory(ticket=ticket, channel=channel, text=f"m{i}") for i in range(55)]
    for i, message in enumerate(messages):
        Message.objects.filter(pk=message.pk).update(created_at=now - timedelta(minutes=100 - i))

    html = console_client.get(f"/console/tickets/{ticket.pk}/").content.decode()
    shown = [int(pk) for pk, _ in timeline_ids(html)]
    cursor = re.search(r'hx-get="/console/tickets/\d+/\?before=([^"]+)"', html).group(1)
    more = console_client.get(f"/console/tickets/{ticket.pk}/?before={cursor}", HTTP_HX_REQUEST="true")

    assert len(shown) == 50
    assert more.status_code == 200
    rest = [int(pk) for pk, _ in timeline_ids(more.content.decode())]
    assert sorted(shown + rest) == sorted(m.pk for m in messages)
    assert "<html" not in more.content.decode()


def seed_history(ticket, *, size: int) -> None:
    """``size`` of everything the page reads: messages (with deliveries and attachments), events, context
    events, other tickets, canned responses and agents."""
    channel = ticket.channel
    bea = AgentFactory()
    for i in range(size):
        other = TicketFactory(customer=ticket.customer, subject=f"Other {i}")
        inbound = MessageFactory(ticket=other if i % 2 else ticket, channel=channel, text=f"in {i}")
        inbound.attachments.create(filename=f"f{i}.txt", content_type="text/plain", size=1, sha256="0")
        out = MessageFactory(ticket=ticket, channel=channel, direction="outbound", author=AgentFactory(), text=f"o{i}")
        Delivery.objects.create(message=out, channel=channel, recipient="x@example.com")
        MessageFactory(ticket=ticket, channel=None, direction="note", author=bea, text=f"note {i}")
        TimelineEventFactory(ticket=ticket, type="assigned", actor_kind="agent", actor=bea, params={"to": bea.pk})
        ContextEventFactory(customer=ticket.customer, type=f"order.{i}")
        CannedResponseFactory()


@pytest.mark.parametrize("size", [1, 30])
def test_the_page_costs_the_same_number_of_queries_whatever_the_history(
    console_client, size, django_assert_max_num_queries
):
    ticket, _, _ = customer_on_two_channels()
    seed_history(ticket, size=size)
    console_client.get(f"/console/tickets/{ticket.pk}/")  # session and user caches warm, as in a browser

    # 21: one reachability query per adapter of the reply channels (the SMS opt-out, the chat visitor, the email
    # subscriptions), whatever the number of channels or messages.
    with django_assert_max_num_queries(21):
        response = console_client.get(f"/console/tickets/{ticket.pk}/")

    assert response.status_code == 200
    assert len(timeline_ids(response.content.decode())) >= min(2 + 3 * size, 30)


@pytest.mark.parametrize("htmx", [True, False])
def test_a_cursor_that_is_not_ours_is_a_400(console_client, htmx):
    ticket = TicketFactory()
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    response = console_client.get(f"/console/tickets/{ticket.pk}/?before=not-a-cursor", **headers)

    assert response.status_code == 400
