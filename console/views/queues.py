"""Queue pages: a queue's tickets with filters, search and keyset pages, and the per-queue counts.

``GET /console/queues/<queue>/`` renders the whole page; the same URL requested by htmx (``HX-Request``) answers only
the table (``_table.html``) and the sidebar counts (swapped out of band), which is how the page refreshes itself when
the live connection reports a new message, or every 30 s when it is down.
"""

from django import forms
from django.http import Http404
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from channels_app.models import Channel
from console.views.access import agent_required
from helpdesk.errors import DomainError
from tickets.models import Ticket
from tickets.selectors.queues import (
    COUNT_CAP,
    NO_VALUE,
    QUEUES,
    QUEUES_BY_SLUG,
    FilterOptions,
    QueueFilters,
    queue_counts,
    queue_filter_options,
    queue_tickets,
    sla_at_risk_description,
)
from tickets.selectors.search import MAX_QUERY_CHARS

CHOICE_NOUNS = {"channel": "channel", "status": "status", "priority": "priority", "team": "team", "assignee": "agent"}


class SearchInput(forms.TextInput):
    input_type = "search"


def _choices(label: str, choices) -> list[tuple[str, str]]:
    return [("", label), *((str(value), name) for value, name in choices)]


class QueueFilterForm(forms.Form):
    """The filters as GET parameters. Every value is checked against what exists, so a hand-edited URL gets a
    message next to the field instead of an error page."""

    q = forms.CharField(
        required=False,
        max_length=MAX_QUERY_CHARS,
        label="Search",
        # The keyboard shortcut "/" focuses #queue-search (console.js).
        widget=SearchInput(attrs={"id": "queue-search", "placeholder": "Subject, message text, customer"}),
    )
    channel = forms.ChoiceField(required=False, label="Channel")
    status = forms.ChoiceField(required=False, label="Status")
    priority = forms.ChoiceField(required=False, label="Priority")
    tag = forms.CharField(required=False, max_length=50, label="Tag")
    team = forms.ChoiceField(required=False, label="Team")
    assignee = forms.ChoiceField(required=False, label="Assignee")

    def __init__(self, data, *, options: FilterOptions):
        super().__init__(data, auto_id="filter-%s")
        self.fields["channel"].choices = _choices("Any channel", Channel.Kind.choices)
        self.fields["status"].choices = _choices("Any status", Ticket.Status.choices)
        self.fields["priority"].choices = _choices("Any priority", Ticket.Priority.choices)
        self.fields["team"].choices = _choices("Any team", [(NO_VALUE, "No team"), *options.teams])
        self.fields["assignee"].choices = _choices("Anyone", [(NO_VALUE, "Nobody"), *options.agents])
        self.fields["tag"].widget.attrs["list"] = "tag-options"
        for name, what in CHOICE_NOUNS.items():
            self.fields[name].error_messages["invalid_choice"] = f"Unknown {what} “%(value)s”: choose one in the list."

    def filters(self) -> QueueFilters:
        data = self.cleaned_data
        return QueueFilters(
            channel=data["channel"],
            status=data["status"],
            priority=data["priority"],
            tag=data["tag"].strip(),
            team=_id_or_none(data["team"]),
            assignee=_id_or_none(data["assignee"]),
            q=data["q"].strip(),
        )


def _id_or_none(value: str) -> int | str | None:
    if not value:
        return None
    return NO_VALUE if value == NO_VALUE else int(value)


def _nav_items(counts: dict[str, int]) -> list[dict]:
    items = []
    for item in QUEUES:
        count = counts[item.slug]
        is_capped = count > COUNT_CAP
        items.append(
            {
                "slug": item.slug,
                "title": item.title,
                "count_label": f"{COUNT_CAP}+" if is_capped else str(count),
                "count_title": f"More than {COUNT_CAP} tickets" if is_capped else f"{count} tickets",
            }
        )
    return items


@require_GET
@agent_required
def queue(request, queue: str):
    if queue not in QUEUES_BY_SLUG:
        raise Http404("No such queue.")
    options = queue_filter_options()
    form = QueueFilterForm(request.GET, options=options)
    page, error = None, ""
    if form.is_valid():
        try:
            page = queue_tickets(
                user=request.user, queue=queue, filters=form.filters(), cursor=request.GET.get("after") or None
            )
        except DomainError as exc:
            error = exc.detail
    is_partial = bool(request.htmx)
    current = QUEUES_BY_SLUG[queue]
    context = {
        "nav": "queues",
        "queue": current,
        "queue_description": sla_at_risk_description() if queue == "sla-at-risk" else current.description,
        "nav_items": _nav_items(queue_counts(user=request.user, cap=COUNT_CAP)),
        "form": form,
        "tag_options": options.tags,
        "page": page,
        "error": error,
        "is_filtered": any(form.data.get(name) for name in form.fields),
        "refresh_url": request.get_full_path(),
        "is_partial": is_partial,
    }
    template = "console/queues/_table.html" if is_partial else "console/queues/queue.html"
    status = 200 if page is not None else 400
    response = render(request, template, context, status=status)
    # The partial and the page share a URL: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response
