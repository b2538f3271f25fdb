"""The unsubscribe page a desk-started email links to (and its List-Unsubscribe header names).

GET only shows what the button will do: mail scanners and link previews fetch every link, and must change nothing.
POST unsubscribes: from the page's button, or with no page at all from a mail client's RFC 8058 one-click request.
Neither can carry a CSRF token, so this view alone is exempt; the signed token is what authorises the change.
"""

from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from channels_app.adapters.base import DESK_STARTED_PURPOSES
from customers.contact_preferences import customer_email_subscription_set
from customers.models import Customer, EmailSubscription
from outreach.unsubscribe import CUSTOMER_LABELS, UnsubscribeLinkInvalid, unsubscribe_token_read
from timeline.types import Actor

_TEMPLATE = "outreach/unsubscribe.html"


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token: str):
    try:
        wanted = unsubscribe_token_read(token)
    except UnsubscribeLinkInvalid as exc:
        return render(request, _TEMPLATE, {"state": "expired" if exc.is_expired else "invalid"}, status=400)
    customer = _surviving(Customer.objects.filter(pk=wanted.customer_id).first())
    if customer is None or wanted.purpose not in DESK_STARTED_PURPOSES:
        return render(request, _TEMPLATE, {"state": "invalid"}, status=400)
    context = {"label": CUSTOMER_LABELS[wanted.purpose], "token": token}
    if request.method == "GET":
        is_subscribed = not EmailSubscription.objects.filter(
            customer=customer, purpose=wanted.purpose, is_subscribed=False
        ).exists()
        return render(request, _TEMPLATE, {**context, "state": "confirm" if is_subscribed else "already"})
    customer_email_subscription_set(
        customer=customer,
        purpose=wanted.purpose,
        is_subscribed=False,
        source=EmailSubscription.Source.UNSUBSCRIBE_LINK,
        actor=Actor.customer(),
    )
    return render(request, _TEMPLATE, {**context, "state": "done"})


def _surviving(customer: Customer | None) -> Customer | None:
    """A merged customer's link still works: it unsubscribes the customer they were merged into."""
    for _ in range(10):
        if customer is None or customer.merged_into_id is None:
            return customer
        customer = Customer.objects.filter(pk=customer.merged_into_id).first()
    return customer
