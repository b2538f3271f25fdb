"""Console pages for customers: the list and search, the profile with the unified timeline, merging two customers
and undoing a merge.

Who may merge: any agent, as Zendesk lets agents with the permission to edit end users merge them, but only
customers whose tickets they may all see. Customers are not scoped by team (every agent may see every customer, as
in the REST API); their tickets and messages are, and a merge moves every ticket of the source (and lets each
customer's next message continue the other's tickets), so merging or unmerging a customer with a ticket of another
team is a 404 like any other thing an agent may not see (the service checks it again under its locks).
"""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from channels_app.adapters.base import DESK_STARTED_PURPOSES
from console.views.access import agent_required
from customers.contact_preferences import customer_contact_preferences_update
from customers.models import Customer
from customers.selectors import (
    customer_contact_preferences_get,
    customer_context_events_recent,
    customer_merge_get,
    customer_merges_recent,
    customer_profile_get,
    customer_search_page,
)
from customers.services import customer_merge, customer_merge_undo
from helpdesk.errors import Conflict, DomainError, NotFound
from helpdesk.text import ascii_int, storable_text
from tickets.selectors.tickets import customer_tickets_all_visible, ticket_list_for_agent
from tickets.selectors.timeline import TimelineEntry, TimelinePage, customer_timeline
from timeline.types import Actor

PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 30
TICKETS_SHOWN = 25
MERGE_CANDIDATES = 10


@agent_required
@require_GET
def customer_list_view(request):
    query = request.GET.get("q", "").strip()[:200]
    try:
        page = customer_search_page(query=query, cursor=request.GET.get("after") or None, limit=PAGE_SIZE)
    except DomainError as exc:
        return render(
            request,
            "console/customers/list.html",
            {"nav": "customers", "query": query, "customers": [], "error": exc.detail},
            status=400,
        )
    return render(
        request,
        "console/customers/list.html",
        {"nav": "customers", "query": query, "customers": page.customers, "next_cursor": page.next_cursor},
    )


@agent_required
@require_GET
def customer_view(request, customer_id: int):
    customer = customer_profile_get(customer_id=customer_id)
    if customer.merged_into_id is not None:
        messages.info(request, f"Customer {customer.pk} was merged into this customer; you are seeing the merged one.")
        return redirect("console:customer", customer_id=customer.merged_into_id)
    try:
        return _profile_response(request, customer, cursor=request.GET.get("before") or None)
    except DomainError as exc:
        return _profile_response(request, customer, status=400, error=exc.detail)


@agent_required
@require_GET
def customer_timeline_view(request, customer_id: int):
    """The "Load earlier" button: the next page of the timeline, as list items that replace the button (htmx)."""
    customer = customer_profile_get(customer_id=customer_id)
    cursor = request.GET.get("cursor") or None
    if not request.htmx:
        url = reverse("console:customer", kwargs={"customer_id": customer.merged_into_id or customer.pk})
        return redirect(f"{url}?before={cursor}#timeline" if cursor else url)
    try:
        page = customer_timeline(customer=customer, viewer=request.user, cursor=cursor, limit=TIMELINE_PAGE_SIZE)
    except DomainError as exc:
        return HttpResponse(exc.detail, status=400, content_type="text/plain")
    context = {"customer": customer, "timeline": page, "timeline_rows": _timeline_rows(page)}
    return render(request, "console/customers/_timeline_entries.html", context)


@agent_required
@require_http_methods(["GET", "POST"])
def customer_contact_preferences_view(request, customer_id: int):
    """GET: the form (htmx, into the profile; else its own page). POST: save the preferred channel and the email
    subscriptions per purpose (htmx: the form answers itself)."""
    customer = customer_profile_get(customer_id=customer_id)
    if customer.merged_into_id is not None:
        raise NotFound("No such customer.")
    contact = customer_contact_preferences_get(customer=customer)
    if request.method == "GET":
        if not request.htmx:
            context = {"nav": "customers", "customer": customer, "contact": contact}
            return render(request, "console/customers/contact_preferences.html", context)
        return _contact_response(request, customer, contact)
    raw_channel = request.POST.get("preferred_channel", "").strip()
    channel = None
    if raw_channel:
        channel_id = ascii_int(raw_channel)
        channel = next((item for item in contact.channels if item.pk == channel_id), None)
        if channel is None:
            return _contact_response(request, customer, contact, status=400, error="Choose one of the channels listed.")
    subscribed = {purpose: request.POST.get(f"email_{purpose}") == "on" for purpose in DESK_STARTED_PURPOSES}
    try:
        changed = customer_contact_preferences_update(
            customer=customer, preferred_channel=channel, email_subscribed=subscribed, actor=Actor.agent(request.user)
        )
    except DomainError as exc:
        return _contact_response(request, customer, contact, status=400, error=exc.detail)
    if changed:
        # Back to the profile, whose timeline now shows the change (htmx follows HX-Redirect as a navigation).
        messages.success(request, "Contact preferences saved: the change is on the timeline.")
        url = reverse("console:customer", kwargs={"customer_id": customer.pk})
        if request.htmx:
            return HttpResponse(status=204, headers={"HX-Redirect": url})
        return redirect(url)
    if not request.htmx:
        messages.info(request, "Nothing changed in the contact preferences.")
        return redirect("console:customer", customer_id=customer.pk)
    return _contact_response(request, customer, contact, notice="Nothing changed.")


def _contact_response(request, customer, contact, *, status: int = 200, error: str = "", notice: str = ""):
    context = {"customer": customer, "contact": contact, "contact_error": error, "contact_notice": notice}
    return render(request, "console/customers/_contact_preferences.html", context, status=status)


@agent_required
@require_http_methods(["GET", "POST"])
def customer_merge_view(request, customer_id: int):
    """GET with ``source`` (an id, or text to search): the confirm step showing both customers, or the matching
    customers to choose from. POST with ``source`` (an id): merge it into this customer."""
    target = customer_profile_get(customer_id=customer_id)
    _merge_access_check(request, target)
    # A form field read by hand: made storable as the form fields and the query string are.
    raw = storable_text((request.POST if request.method == "POST" else request.GET).get("source", "")).strip()[:200]
    if not raw:
        return _profile_response(request, target, status=400, merge_error="Enter the id, name or email of a customer.")
    source = None
    source_id = ascii_int(raw)
    if source_id is not None:
        try:
            source = customer_profile_get(customer_id=source_id)
        except NotFound:
            if request.method == "POST":
                return _confirm_response(request, target, None, raw, error=f"There is no customer {raw}.")
        else:
            _merge_access_check(request, source)
    if request.method == "GET":
        if source is None:
            candidates = [
                candidate
                for candidate in customer_search_page(query=raw, limit=MERGE_CANDIDATES + 1).customers
                if candidate.pk != target.pk
            ][:MERGE_CANDIDATES]
            if not candidates:
                return _profile_response(
                    request, target, status=400, merge_error=f"No customer matches “{raw}”.", merge_value=raw
                )
            return _confirm_response(request, target, None, raw, candidates=candidates)
        return _confirm_response(request, target, source, raw)
    if source is None:
        return _confirm_response(request, target, None, raw, error="Choose a customer by their id.")
    try:
        merge = customer_merge(source=source, target=target, actor=Actor.agent(request.user))
    except Conflict as exc:
        return _confirm_response(request, target, source, raw, error=exc.detail)
    url = reverse("console:customer", kwargs={"customer_id": target.pk})
    return redirect(f"{url}?merged={merge.pk}")


@agent_required
@require_POST
def customer_merge_undo_view(request, merge_id: int):
    merge = customer_merge_get(merge_id=merge_id)
    was_undone = merge.undone_at is not None
    try:
        merge = customer_merge_undo(merge=merge, actor=Actor.agent(request.user))
    except Conflict as exc:
        target = customer_profile_get(customer_id=merge.target_id)
        if target.merged_into_id is not None:
            target = customer_profile_get(customer_id=target.merged_into_id)
        return _profile_response(request, target, status=409, error=exc.detail)
    if was_undone:
        messages.info(request, f"That merge was already undone: customer {merge.source_id} is separate again.")
    else:
        messages.success(request, f"Merge undone: customer {merge.source_id} is separate again.")
    return redirect("console:customer", customer_id=merge.target_id)


def _merge_access_check(request, customer: Customer) -> None:
    """``NotFound`` (a 404) when one of the customer's tickets is out of the agent's sight: they may not merge
    them, into or from anyone."""
    if not customer_tickets_all_visible(user=request.user, customer_ids=[customer.pk]):
        raise NotFound("No such customer.")


def _profile_response(
    request,
    customer: Customer,
    *,
    cursor: str | None = None,
    status: int = 200,
    error: str = "",
    merge_error: str = "",
    merge_value: str = "",
):
    timeline = customer_timeline(customer=customer, viewer=request.user, cursor=cursor, limit=TIMELINE_PAGE_SIZE)
    tickets = list(ticket_list_for_agent(user=request.user, customer_id=customer.pk)[: TICKETS_SHOWN + 1])
    merges = customer_merges_recent(customer=customer)
    just_merged = None
    merged_id = ascii_int(request.GET.get("merged", ""))
    if merged_id is not None:
        just_merged = next((merge for merge in merges if merge.pk == merged_id), None)
    context = {
        "nav": "customers",
        "customer": customer,
        "identities": list(customer.identities.all()),
        "attributes": sorted((customer.attributes or {}).items()),
        "context_events": [
            (event, _details(event.payload)) for event in customer_context_events_recent(customer=customer)
        ],
        "tickets": tickets[:TICKETS_SHOWN],
        "more_tickets": len(tickets) > TICKETS_SHOWN,
        "timeline": timeline,
        "timeline_rows": _timeline_rows(timeline),
        "is_earlier_page": cursor is not None,
        "merges": merges,
        "just_merged": just_merged,
        "error": error,
        "merge_error": merge_error,
        "merge_value": merge_value,
    }
    return render(request, "console/customers/profile.html", context, status=status)


def _timeline_rows(page: TimelinePage) -> list[tuple[TimelineEntry, list[tuple[str, object]]]]:
    """Each entry with its parameters (events) or payload (context events) as (key, value) pairs: a template
    cannot iterate a dict safely (``payload.items`` is the payload's own "items" key when it has one)."""
    rows = []
    for entry in page.entries:
        if entry.kind == "event":
            details = _details(entry.item.params)
        elif entry.kind == "context":
            details = _details(entry.item.payload)
        else:
            details = []
        rows.append((entry, details))
    return rows


def _details(data) -> list[tuple[str, object]]:
    return sorted((str(key), value) for key, value in data.items()) if isinstance(data, dict) else []


def _confirm_response(request, target: Customer, source: Customer | None, raw: str, *, candidates=None, error=""):
    context = {
        "nav": "customers",
        "target": target,
        "source": source,
        "query": raw,
        "candidates": candidates or [],
        "error": error,
    }
    return render(request, "console/customers/merge_confirm.html", context, status=400 if error else 200)
