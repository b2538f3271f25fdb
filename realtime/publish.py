"""Publishing events to channel-layer groups: after commit, best-effort.

The database is the truth and every client catches up over REST with a cursor, so a push that fails (Redis down; a
publish reaches only the connections subscribed at that moment) is logged and forgotten; it never fails the
transaction that wrote the data, nor the request that made it. With Redis, the request's thread publishes all of
an event's groups in one round trip, without a hop to the event loop (realtime/layers.py).

A channel-layer message is ``{"type": "realtime.event", "event": <the JSON the client receives>, "group": <the
group it was sent to>}``, plus, for events about one ticket, ``"audience": {"team_id", "assignee_id"}`` so each
agent connection drops what its agent may not see (the same rule as ``tickets.selectors.ticket_visibility_q``;
a moved ticket's audience carries ``"previous"`` too, so the agents who lose it hear that it left), and
``"sender"``: the channel name of the connection that caused it, which does not get its own event back.

Control events go to consumers, never to a client: ``access_changed`` (``agent_access_changed_publish``) to the
connections of an agent whose access changed.
"""

import asyncio
import logging
import time
from collections.abc import Iterable
from functools import partial
from operator import attrgetter

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.urls import reverse
from rest_framework.fields import DateTimeField

from helpdesk.timing import phase_add
from realtime.audiences import Publication, audiences
from realtime.groups import AGENTS, agent_group, ticket_group
from realtime.layers import RedisPubSubLayer
from tickets.models import Attachment, Message, Ticket

logger = logging.getLogger(__name__)

EVENT_TYPE = "realtime.event"  # consumers' handler: ``realtime_event``
# A control event: the agent's access changed (deactivated, role, teams); their connections read it again.
ACCESS_CHANGED = "access_changed"
# A Redis that accepts connections but does not answer must not hold a request thread for long.
SEND_TIMEOUT_SECONDS = 2.0
_DATETIME = DateTimeField()  # the REST API's rendering of times, so both say the same


def realtime_publish(*, groups: Iterable[str], event: dict, audience: dict | None = None) -> None:
    """After commit, send ``event`` (a JSON-able dict with a "type") to each group. Best-effort.

    ``audience`` (``{"team_id", "assignee_id"}`` of the ticket the event is about) lets agent connections drop
    events of tickets their agent may not see. Outside a transaction the event goes at once."""
    _publish_on_commit([Publication(groups=tuple(groups), event=event, audience=audience)])


def agent_access_changed_publish(*, user_ids: Iterable[int]) -> None:
    """After commit, tell every open connection of these agents that what they may see changed: each reads the
    agent's access again, closes (4403) if they are no longer an active agent, and leaves the tickets they may no
    longer see. Call it from the service that changed the agents, inside its transaction."""
    groups = [agent_group(user_id) for user_id in sorted(set(user_ids))]
    _publish_on_commit([Publication(groups=tuple(groups), event={"type": ACCESS_CHANGED})])


def _publish_on_commit(publications: list[Publication]) -> None:
    publications = tuple(publication for publication in publications if publication.groups)
    if publications:
        transaction.on_commit(partial(_send_from_sync, publications=publications), robust=True)


async def realtime_send(*, groups: Iterable[str], event: dict, audience: dict | None = None, sender: str = "") -> None:
    """Send ``event`` to each group now, from async code (consumers relaying typing: nothing to commit first).
    Best-effort: failures are logged, never raised."""
    await _send([Publication(groups=tuple(groups), event=event, audience=audience)], sender=sender)


async def _send(publications: list[Publication] | tuple[Publication, ...], *, sender: str = "") -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # At once, not one after the other: a message's groups are told in one Redis round trip's time.
    await asyncio.gather(*(_send_one(layer, group, message) for group, message in _messages(publications, sender)))


def _messages(publications, sender: str = "") -> list[tuple[str, dict]]:
    """The channel-layer message for each group of each publication."""
    messages = []
    for publication in publications:
        message = {"type": EVENT_TYPE, "event": publication.event}
        if publication.audience is not None:
            message["audience"] = publication.audience
        if sender:
            message["sender"] = sender
        for group in dict.fromkeys(publication.groups):
            messages.append((group, {**message, "group": group}))
    return messages


async def _send_one(layer, group: str, message: dict) -> None:
    try:
        await asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT_SECONDS)
    except Exception:
        logger.warning(
            "realtime.publish_failed", extra={"group": group, "event_type": message["event"].get("type")}, exc_info=True
        )


def _send_from_sync(*, publications: tuple[Publication, ...]) -> None:
    # Runs in a sync thread (a request's, a task's, or database_sync_to_async's under a consumer). The Redis layer
    # publishes from this thread, all groups in one round trip (realtime.layers); any other layer is reached with
    # async_to_sync, which uses the server's event loop when there is one, and a fresh one in a worker process.
    started = time.perf_counter()
    try:
        layer = get_channel_layer()
        if isinstance(layer, RedisPubSubLayer) and layer.can_send_from_sync:
            layer.group_send_from_sync(_messages(publications))
        elif layer is not None:
            async_to_sync(_send)(publications)
    except Exception:  # Redis gone, or called from a thread that runs an event loop itself
        logger.warning("realtime.publish_failed", exc_info=True)
    finally:
        phase_add("push", time.perf_counter() - started)


def message_created_publish(*, message: Message) -> None:
    """After commit, tell the message's ticket group and the agents (and, for a customer-visible message, the
    registered audiences: ``realtime.audiences``, e.g. the chat visitors whose conversation it is) that ``message``
    exists. Best-effort: a failed push is logged, never raised.

    Agents get every message, notes included (``direction`` "note"); audiences never get notes. Queries: its
    attachments (none when loaded; left loaded on ``message`` for the caller's answer) and, after commit and after
    the agents have been told, what each audience reads (the chat visitors: one): the agents' push does not wait
    for that, nor does the transaction hold its locks for it. The message's ticket, customer and author are the
    instances the caller created it with (a caller that passes a bare message costs a query for each it lacks).
    """
    loaded = message
    # Read once for every rendering (the agents', the audiences', the caller's response); nothing when the caller
    # has them loaded already.
    prefetch_related_objects([loaded], Prefetch("attachments", queryset=Attachment.objects.order_by("pk")))
    publications = [
        Publication(
            groups=(ticket_group(loaded.ticket_id), AGENTS),
            event={"type": "message", "message": _agent_message_data(loaded)},
            audience={"team_id": loaded.ticket.team_id, "assignee_id": loaded.ticket.assignee_id},
        )
    ]
    _publish_on_commit(publications)
    if loaded.direction != Message.Direction.NOTE:
        transaction.on_commit(partial(_audiences_publish, message=loaded), robust=True)


def _audiences_publish(*, message: Message) -> None:
    # After commit (the hooks run in order: after the agents' push). Best-effort like the push itself.
    try:
        publications = tuple(
            publication
            for audience in audiences()
            for publication in audience.message_publications(message=message)
            if publication.groups
        )
    except Exception:
        logger.warning("realtime.publish_failed", extra={"message_id": message.pk}, exc_info=True)
        return
    if publications:
        _send_from_sync(publications=publications)


def ticket_changed_publish(*, ticket: Ticket, previous: Ticket | dict | None = None) -> None:
    """After commit, tell the ticket's group and the agents that ``ticket``'s fields changed (status, priority,
    assignee, team; ``version`` lets an open ticket page see that its form is stale). Best-effort, no query.

    ``previous`` (the ticket as it was, or its ``{"team_id", "assignee_id"}``) also lets the agents who could see
    it before the change hear of it: a ticket moved to another team must leave their queues and open pages too.
    Call it from the service that wrote the change, inside its transaction."""
    audience = {"team_id": ticket.team_id, "assignee_id": ticket.assignee_id}
    before = _audience_of(previous)
    if before is not None and before != audience:
        audience["previous"] = before
    event = {
        "type": "ticket",
        "ticket": {
            "id": ticket.pk,
            "status": ticket.status,
            "priority": ticket.priority,
            "assignee_id": ticket.assignee_id,
            "team_id": ticket.team_id,
            "version": ticket.version,
            "merged_into_id": ticket.merged_into_id,  # a merged ticket's page points the agent to the target
        },
    }
    _publish_on_commit([Publication(groups=(ticket_group(ticket.pk), AGENTS), event=event, audience=audience)])


def _audience_of(previous: Ticket | dict | None) -> dict | None:
    if previous is None:
        return None
    if isinstance(previous, dict):
        return {"team_id": previous.get("team_id"), "assignee_id": previous.get("assignee_id")}
    return {"team_id": previous.team_id, "assignee_id": previous.assignee_id}


def _agent_message_data(message: Message) -> dict:
    """The message as the console sees it in events: the widget's shape, with the agents' attachment URLs, the
    customer's name on inbound messages and the author's user id (None on inbound ones)."""
    if message.direction == Message.Direction.INBOUND:
        author_name = message.customer.name
    elif message.author is not None:
        profile = getattr(message.author, "agent_profile", None)
        author_name = (profile.display_name if profile else "") or message.author.get_username()
    else:
        author_name = ""
    return {
        "id": message.pk,
        "ticket_id": message.ticket_id,
        "direction": message.direction,
        "text": message.text,
        "created_at": _DATETIME.to_representation(message.created_at),
        "author_name": author_name,
        # The console tells another agent's reply from its own by id (names need not be unique).
        "author_id": message.author_id,
        "attachments": [
            {
                "id": attachment.pk,
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "url": reverse("attachment-download", kwargs={"attachment_id": attachment.pk}),
            }
            for attachment in sorted(message.attachments.all(), key=attrgetter("pk"))
        ],
    }
