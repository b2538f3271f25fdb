"""Which chat visitors hear of a message (chat.publish.visitor_publications): the customer's visitors on the
chat channels the ticket's conversation went through, each with its own channel's attachment URLs; nobody else."""

import pytest

from channels_app.models import Channel
from chat.models import ChatVisitor
from chat.publish import visitor_publications
from realtime.groups import visitor_group
from tests.factories import ChannelFactory, CustomerFactory, MessageFactory, TicketFactory
from tickets.models import Attachment, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    customer = CustomerFactory(name="Ann")
    shop = ChannelFactory(kind=Channel.Kind.CHAT, name="Shop widget")
    help_centre = ChannelFactory(kind=Channel.Kind.CHAT, name="Help centre widget")
    email = ChannelFactory(kind=Channel.Kind.EMAIL, name="Support mailbox")
    visitors = {
        "shop_phone": ChatVisitor.objects.create(channel=shop, customer=customer),
        "shop_laptop": ChatVisitor.objects.create(channel=shop, customer=customer),
        "help_centre_tab": ChatVisitor.objects.create(channel=help_centre, customer=customer),
        "someone_else": ChatVisitor.objects.create(channel=shop, customer=CustomerFactory()),
    }
    ticket = TicketFactory(customer=customer)
    return {
        "customer": customer,
        "shop": shop,
        "help_centre": help_centre,
        "email": email,
        "ticket": ticket,
        **visitors,
    }


def groups_by_channel(publications) -> dict[str, set[str]]:
    keys = {}
    for publication in publications:
        url = (
            publication.event["message"]["attachments"][0]["url"] if publication.event["message"]["attachments"] else ""
        )
        keys[url.split("/chat/api/")[1].split("/")[0] if url else "?"] = set(publication.groups)
    return keys


def groups_of(desk, *names) -> set[str]:
    return {visitor_group(desk[name].public_id) for name in names}


def message_with_attachment(**fields) -> Message:
    message = MessageFactory(**fields)
    Attachment.objects.create(message=message, file="a/b.png", filename="b.png", content_type="image/png", size=3)
    return Message.objects.select_related("channel").prefetch_related("attachments").get(pk=message.pk)


def test_a_chat_message_reaches_the_customers_visitors_on_that_widget_only(desk, django_assert_num_queries):
    message = message_with_attachment(ticket=desk["ticket"], channel=desk["shop"])

    # The customer's visitors, then (they use two widgets) which widgets the ticket went through
    with django_assert_num_queries(2):
        publications = visitor_publications(message)

    assert groups_by_channel(publications) == {desk["shop"].public_key: groups_of(desk, "shop_phone", "shop_laptop")}


def test_once_the_customer_wrote_on_a_second_widget_both_widgets_visitors_hear_with_their_own_urls(desk):
    MessageFactory(ticket=desk["ticket"], channel=desk["help_centre"])
    message = message_with_attachment(ticket=desk["ticket"], channel=desk["shop"])

    publications = visitor_publications(message)

    assert groups_by_channel(publications) == {
        desk["shop"].public_key: groups_of(desk, "shop_phone", "shop_laptop"),
        desk["help_centre"].public_key: groups_of(desk, "help_centre_tab"),
    }


def test_an_email_reply_on_a_chatted_ticket_reaches_the_chat_visitors(desk):
    MessageFactory(ticket=desk["ticket"], channel=desk["shop"])
    reply = message_with_attachment(ticket=desk["ticket"], channel=desk["email"], direction=Message.Direction.OUTBOUND)

    publications = visitor_publications(reply)

    assert groups_by_channel(publications) == {desk["shop"].public_key: groups_of(desk, "shop_phone", "shop_laptop")}


def test_a_ticket_never_chatted_on_reaches_no_visitor(desk):
    message = message_with_attachment(ticket=desk["ticket"], channel=desk["email"])

    assert visitor_publications(message) == []


def test_a_customer_without_visitors_costs_one_query(django_assert_num_queries):
    message = MessageFactory(channel=ChannelFactory(kind=Channel.Kind.EMAIL))

    with django_assert_num_queries(1):
        assert visitor_publications(message) == []


def test_a_customer_chatting_on_one_widget_costs_one_query(django_assert_num_queries):
    # The usual case: every visitor of the customer is on the widget the message came through
    shop = ChannelFactory(kind=Channel.Kind.CHAT)
    visitor = ChatVisitor.objects.create(channel=shop, customer=CustomerFactory())
    message = MessageFactory(ticket=TicketFactory(customer=visitor.customer), channel=shop)
    message = Message.objects.select_related("channel").prefetch_related("attachments").get(pk=message.pk)

    # (its attachments come loaded, as message_created_publish passes them)
    with django_assert_num_queries(1):
        publications = visitor_publications(message)

    assert [publication.groups for publication in publications] == [(visitor_group(visitor.public_id),)]
