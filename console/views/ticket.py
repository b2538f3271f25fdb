"""The ticket page: the customer's whole history, the context panel, and the forms that act on the ticket.

Every endpoint fetches the ticket with ``ticket_get_for_agent`` first, so a ticket the agent may not see is a 404
for GET and POST alike. Forms post as plain forms or through htmx: success redirects (``HX-Redirect`` for htmx),
an error answers 400/409 with the form again, the agent's text kept and the error next to the field.
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from channels_app.models import Channel
from channels_app.sms.segments import sms_segments
from console.forms.ticket import MergeForm, NoteForm, ReplyForm, TicketUpdateForm, new_idempotency_key
from console.views.access import agent_required
from console.views.ticket_timeline import event_sentence, message_channel_kind
from helpdesk.errors import DomainError, NotFound
from tickets.models import Ticket
from tickets.selectors.ticket_page import TicketPage, ticket_page, ticket_timeline_page
from tickets.selectors.tickets import ticket_get_for_agent
from tickets.services.merge import ticket_merge
from tickets.services.replies import ReplyAttachment, StaleReply, note_create, reply_create
from tickets.services.updates import TicketChanges, ticket_update
from timeline.types import Actor

# Which reply field a service error belongs next to (by its code); anything else is shown above the form.
REPLY_ERROR_FIELDS = {
    "empty_reply": "text",
    "sms_opted_out": "channel",
    "no_recipient_identity": "channel",
    "no_channel": "channel",
    "channel_disabled": "channel",
    "channel_cannot_send": "channel",
    "invalid_cc": "cc",
    "too_many_cc": "cc",
    "cc_not_supported": "cc",
    "attachments_not_supported": "attachments",
    "attachment_too_large": "attachments",
    "attachments_too_large": "attachments",
}
UPDATE_ERROR_FIELDS = {"unknown_team": "team", "unknown_agent": "assignee", "ticket_closed": "status"}


@dataclass(frozen=True)
class TimelineItem:
    kind: str  # message | event | context
    item: object
    channel_kind: str = ""
    sentence: str = ""
    author_name: str = ""
    other_ticket: bool = False
    # Where an inbound message came from (its identity's value, from the customer's identities: no query each).
    address: str = ""
    # A context event's payload as (key, value) pairs; a payload key such as "items" must not shadow dict methods.
    pairs: tuple = ()


@agent_required
@require_GET
def ticket_detail(request, ticket_id: int):
    ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket_id)
    if ticket.merged_into_id is not None:
        messages.info(request, f"Ticket #{ticket.pk} was merged into #{ticket.merged_into_id}.")
        return redirect("console:ticket", ticket_id=ticket.merged_into_id)
    cursor = request.GET.get("before")
    if request.htmx and request.GET.get("partial") == "timeline":
        # The live console's catch-up (console.js): the newest page of the timeline, without the page around it.
        cursor = None
    if (cursor or request.GET.get("partial") == "timeline") and request.htmx:
        try:
            later = ticket_timeline_page(user=request.user, ticket=ticket, cursor=cursor or None)
        except DomainError as exc:
            return HttpResponseBadRequest(exc.detail)
        context = {
            "ticket": ticket,
            "timeline": _timeline_items(
                later.timeline.entries, ticket=ticket, user_names=later.user_names, team_names=later.team_names
            ),
            "next_cursor": later.timeline.next_cursor,
        }
        return render(request, "console/ticket/_timeline_items.html", context)
    try:
        return _render_page(request, ticket, cursor=cursor)
    except DomainError as exc:  # a cursor that is not one of ours
        return HttpResponseBadRequest(exc.detail)


@agent_required
@require_POST
def ticket_reply(request, ticket_id: int):
    ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket_id)
    page = ticket_page(user=request.user, ticket=ticket)
    form = ReplyForm(request.POST, request.FILES, channel_choices=_channel_choices(page))
    if not form.is_valid():
        return _render_form(request, page, "reply", form=form, status=400)
    values = form.cleaned_data
    channel = next(option.channel for option in page.reply_channels if option.channel.pk == values["channel"])
    try:
        reply_create(
            ticket=ticket,
            author=request.user,
            text=values["text"],
            channel=channel,
            status=values["status"] or None,
            idempotency_key=values["idempotency_key"],
            cc=values["cc"],
            attachments=[
                ReplyAttachment(filename=f.name, content_type=f.content_type or "", content=f.read())
                for f in values["attachments"]
            ],
            last_seen_message_id=None if values["confirm_stale"] else values["last_seen_message_id"],
        )
    except StaleReply as exc:
        return _render_form(request, page, "reply", form=form, status=409, stale_reply=exc.newer)
    except DomainError as exc:
        _add_service_error(form, exc, REPLY_ERROR_FIELDS)
        return _render_form(request, page, "reply", form=form, status=exc.status_code)
    return _done(request, ticket)


@agent_required
@require_POST
def ticket_note(request, ticket_id: int):
    ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            note_create(
                ticket=ticket,
                author=request.user,
                text=form.cleaned_data["text"],
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except DomainError as exc:
            _add_service_error(form, exc, {"empty_note": "text"})
            page = ticket_page(user=request.user, ticket=ticket)
            return _render_form(request, page, "note", form=form, status=exc.status_code)
        return _done(request, ticket)
    return _render_form(request, ticket_page(user=request.user, ticket=ticket), "note", form=form, status=400)


@agent_required
@require_POST
def ticket_update_view(request, ticket_id: int):
    ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket_id)
    page = ticket_page(user=request.user, ticket=ticket)
    data = request.POST.copy()
    if data.get("assign_to_me"):
        data["assignee"] = str(request.user.pk)
    form = _update_form(page, data=data)
    if not form.is_valid():
        return _render_form(request, page, "update", form=form, status=400)
    values = form.cleaned_data
    changes = TicketChanges(
        status=values["status"],
        priority=values["priority"],
        team_id=values["team"],
        assignee_id=values["assignee"],
        tags=values["tags"],
    )
    try:
        ticket_update(
            ticket=ticket, actor=Actor.agent(request.user), changes=changes, expected_version=values["version"]
        )
    except DomainError as exc:
        if exc.code == "stale":
            # The current values, with the current version: what the agent sees now is what they would change.
            current = ticket_get_for_agent(user=request.user, ticket_id=ticket.pk)
            page = ticket_page(user=request.user, ticket=current)
            return _render_form(
                request, page, "update", form=_update_form(page), status=409, update_conflict=exc.detail
            )
        _add_service_error(form, exc, UPDATE_ERROR_FIELDS)
        return _render_form(request, page, "update", form=form, status=exc.status_code)
    return _done(request, ticket)


@agent_required
@require_POST
def ticket_merge_view(request, ticket_id: int):
    ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket_id)
    form = MergeForm(request.POST)
    merge_target = None
    status = 400
    if form.is_valid():
        try:
            merge_target = ticket_get_for_agent(user=request.user, ticket_id=form.cleaned_data["target"])
        except NotFound:
            form.add_error("target", "No such ticket.")
        else:
            if merge_target.customer_id != ticket.customer_id and not form.cleaned_data["confirm_other_customer"]:
                # Like Zendesk: allowed, but only once the agent confirmed the conversation joins another person's.
                page = ticket_page(user=request.user, ticket=ticket)
                return _render_form(request, page, "merge", form=form, status=409, merge_confirm=merge_target)
            try:
                ticket_merge(source=ticket, target=merge_target, actor=Actor.agent(request.user))
            except NotFound:
                # One of them moved out of the agent's sight after the reads above: answered as if it had been out
                # of sight already (this ticket: a 404 from the read again; the target: a field error)
                ticket = ticket_get_for_agent(user=request.user, ticket_id=ticket.pk)
                form.add_error("target", "No such ticket.")
            except DomainError as exc:
                form.add_error("target", exc.detail)
                status = exc.status_code
            else:
                messages.success(request, f"Ticket #{ticket.pk} was merged into this ticket.")
                return _done(request, merge_target)
    return _render_form(request, ticket_page(user=request.user, ticket=ticket), "merge", form=form, status=status)


# --- Rendering ----------------------------------------------------------------------------------------------------

FORM_TEMPLATES = {
    "reply": "console/ticket/_reply_form.html",
    "note": "console/ticket/_note_form.html",
    "update": "console/ticket/_ticket_form.html",
    "merge": "console/ticket/_merge_form.html",
}


def _render_page(request, ticket: Ticket, *, cursor: str | None = None, status: int = 200, **forms):
    page = ticket_page(user=request.user, ticket=ticket)
    context = _page_context(request, page, **forms)
    if cursor:
        later = ticket_timeline_page(user=request.user, ticket=ticket, cursor=cursor)
        context["timeline"] = _timeline_items(
            later.timeline.entries, ticket=ticket, user_names=later.user_names, team_names=later.team_names
        )
        context["next_cursor"] = later.timeline.next_cursor
    return render(request, "console/ticket/page.html", context, status=status)


def _render_form(request, page: TicketPage, which: str, *, form, status: int, **extra):
    """The form again, with its errors: only the form for htmx (it replaces itself), the whole page otherwise."""
    context = _page_context(request, page, **{f"{which}_form": form}, **extra)
    template = FORM_TEMPLATES[which] if request.htmx else "console/ticket/page.html"
    return render(request, template, context, status=status)


def _page_context(request, page: TicketPage, **overrides) -> dict:
    ticket = page.ticket
    reply_form = overrides.pop("reply_form", None) or ReplyForm(
        initial={
            "channel": page.reply_channels[0].channel.pk if page.reply_channels else None,
            "last_seen_message_id": page.last_message_id,
            "idempotency_key": new_idempotency_key(),
        },
        channel_choices=_channel_choices(page),
    )
    note_form = overrides.pop("note_form", None) or NoteForm(initial={"idempotency_key": new_idempotency_key()})
    update_form = overrides.pop("update_form", None) or _update_form(page)
    merge_form = overrides.pop("merge_form", None) or MergeForm()
    reply_text = reply_form["text"].value() or ""
    selected_channel = _selected_channel(page, reply_form)
    return {
        "nav": "queues",
        "page": page,
        "ticket": ticket,
        "customer": page.customer,
        "identities": list(page.customer.identities.all()),
        "attributes": sorted((page.customer.attributes or {}).items()),
        "timeline": _timeline_items(
            page.timeline.entries, ticket=ticket, user_names=page.user_names, team_names=page.team_names
        ),
        "next_cursor": page.timeline.next_cursor,
        "open_tickets": [t for t in page.other_tickets if t.is_active],
        "context_events": [(event, _pairs(event.payload, 4)) for event in page.context_events],
        "reply_form": reply_form,
        "note_form": note_form,
        "update_form": update_form,
        "merge_form": merge_form,
        "selected_channel": selected_channel,
        "sms_segments": sms_segments(reply_text),
        "attachment_limits": settings.HELPDESK,
        "assignee_name": page.user_names.get(ticket.assignee_id, "") if ticket.assignee_id else "",
        **overrides,
    }


def _selected_channel(page: TicketPage, reply_form) -> Channel | None:
    value = reply_form["channel"].value()
    for option in page.reply_channels:
        if str(option.channel.pk) == str(value):
            return option.channel
    return page.reply_channels[0].channel if page.reply_channels else None


def _timeline_items(entries, *, ticket: Ticket, user_names: dict, team_names: dict) -> list[TimelineItem]:
    addresses = {identity.pk: identity.value for identity in ticket.customer.identities.all()}
    items = []
    for entry in entries:
        if entry.kind == "message":
            message = entry.item
            author = ""
            if message.author_id:
                author = user_names.get(message.author_id) or message.author.get_username()
            items.append(
                TimelineItem(
                    kind="message",
                    item=message,
                    channel_kind=message_channel_kind(message),
                    author_name=author,
                    other_ticket=message.ticket_id != ticket.pk,
                    address=addresses.get(message.identity_id, ""),
                )
            )
        elif entry.kind == "event":
            event = entry.item
            items.append(
                TimelineItem(
                    kind="event",
                    item=event,
                    sentence=event_sentence(event, user_names=user_names, team_names=team_names),
                    other_ticket=event.ticket_id is not None and event.ticket_id != ticket.pk,
                )
            )
        else:
            items.append(TimelineItem(kind="context", item=entry.item, pairs=_pairs(entry.item.payload, 6)))
    return items


def _pairs(payload, limit: int) -> tuple:
    if not isinstance(payload, dict):
        return ()
    return tuple(list(payload.items())[:limit])


def _update_form(page: TicketPage, *, data=None) -> TicketUpdateForm:
    ticket = page.ticket
    initial = {
        "assignee": ticket.assignee_id,
        "team": ticket.team_id,
        "status": ticket.status,
        "priority": ticket.priority,
        "tags": ", ".join(tag.name for tag in ticket.tags.all()),
        "version": ticket.version,
    }
    agents = [(agent.pk, page.user_names.get(agent.pk, agent.get_username())) for agent in page.agents]
    teams = [(team.pk, team.name) for team in page.teams]
    return TicketUpdateForm(data=data, initial=initial, agents=agents, teams=teams)


def _channel_choices(page: TicketPage) -> list[tuple[int, str]]:
    return [(option.channel.pk, option.channel.name) for option in page.reply_channels]


def _add_service_error(form, exc: DomainError, fields: dict) -> None:
    field = fields.get(exc.code)
    if field == "attachments":
        form.attachment_errors.append(exc.detail)
    else:
        form.add_error(field if field in form.fields else None, exc.detail)


def _done(request, ticket: Ticket) -> HttpResponse:
    url = reverse("console:ticket", kwargs={"ticket_id": ticket.pk})
    if request.htmx:
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    return redirect(url, permanent=False)
