"""What chat visitors receive over their websocket, plugged into realtime as an audience (``realtime.audiences``,
registered in ``ChatConfig.ready``).

A chat visitor of the message's customer gets its inbound and outbound messages, never notes, on tickets the
customer has written on through the visitor's chat channel, whichever channel each message took (an agent's email
reply after the visitor left belongs to the conversation): the rule of ``chat.selectors`` for the widget's REST
history, so push and catch-up agree.
"""

from channels_app.models import Channel
from chat.models import ChatVisitor
from chat.selectors import chat_message_data, ticket_visitor_groups
from chat.services.messages import agent_read_mark
from realtime.audiences import Publication
from realtime.groups import visitor_group
from tickets.models import Message


class ChatVisitorAudience:
    """The chat visitors whose conversation a ticket is."""

    def message_publications(self, *, message: Message) -> list[Publication]:
        return visitor_publications(message)

    def ticket_groups(self, *, ticket_id: int, customer_id: int) -> list[str]:
        return ticket_visitor_groups(ticket_id=ticket_id, customer_id=customer_id)

    def agent_read(self, *, ticket_id: int, customer_id: int, up_to: int) -> None:
        agent_read_mark(ticket_id=ticket_id, customer_id=customer_id, up_to=up_to)


def visitor_publications(loaded: Message) -> list[Publication]:
    # The customer's chat visitors (usually one or two), then which of their chat channels the ticket's
    # conversation went through: the message's own channel when it is a chat channel and the only one they use,
    # else one more query. Plain values, not model instances: this runs for every message while the sender waits.
    visitors = list(ChatVisitor.objects.filter(customer_id=loaded.customer_id).values_list("public_id", "channel_id"))
    if not visitors:
        return []
    channel_ids = {channel_id for _, channel_id in visitors}
    own = loaded.channel if loaded.channel.kind == Channel.Kind.CHAT else None
    if own is not None and channel_ids == {own.pk}:
        channels = {own.pk: own}
    else:
        ticket_chat_channels = Message.objects.filter(
            ticket_id=loaded.ticket_id, customer_id=loaded.customer_id, channel_id__in=channel_ids
        ).values("channel_id")
        channels = {
            channel_id: Channel(pk=channel_id, public_key=public_key)
            for channel_id, public_key in Channel.objects.filter(
                pk__in=ticket_chat_channels, kind=Channel.Kind.CHAT
            ).values_list("pk", "public_key")
        }
    publications = []
    for channel_id, channel in channels.items():
        groups = tuple(
            visitor_group(public_id) for public_id, visitor_channel_id in visitors if visitor_channel_id == channel_id
        )
        data = chat_message_data(message=loaded, channel=channel)
        publications.append(Publication(groups=groups, event={"type": "message", "message": data}))
    return publications
