"""Ticket search over the subject, the messages' text and the customer (name, email addresses, phone numbers).

On PostgreSQL it is full-text search with the ``simple`` configuration (no stemming, no stop words, so names and
numbers match as written), backed by GIN expression indexes that migration ``tickets/0005_queue_search`` creates;
identities (email addresses, phone numbers) match exactly, normalised as they are stored. The expressions here
must stay exactly those of the indexes, or PostgreSQL falls back to scanning every row. Elsewhere (SQLite, for a
laptop demo) it is a case-insensitive substring match.

The search is a condition on tickets (``ticket_search_q``): the caller adds it to a queryset that already says what
the agent may see, so a match in a ticket the agent may not see is never listed.
"""

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import connection
from django.db.models import Exists, Func, OuterRef, Q, QuerySet

from customers.identities import normalise_identity
from customers.models import Customer, CustomerIdentity
from tickets.models import Message, Ticket

# Longer input is cut: nobody searches with a paragraph, and the query must stay cheap to plan.
MAX_QUERY_CHARS = 200
# Up to this many matching tickets are collected by id; beyond, the queue is walked in order (ticket_search_q).
SEARCH_CANDIDATES = 2000


class SimpleVector(Func):
    """``to_tsvector('simple'::regconfig, <column>)``, written out as the indexes of migration 0005 are."""

    template = "to_tsvector('simple'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


def search_normalise(text: str) -> str:
    return " ".join(text.split())[:MAX_QUERY_CHARS]


def ticket_search_q(*, text: str) -> Q:
    """Tickets whose subject, any message text, or customer (name, or an email address / phone number / external
    id written out in full) matches ``text``. On PostgreSQL this runs one query to collect the matching ticket ids."""
    text = search_normalise(text)
    if not text:
        return Q()
    if connection.vendor != "postgresql":
        return _substring_q(text)
    query = _query(text)
    # Rare terms (a customer's address, an order number, a name) match few tickets: collect their ids once, and the
    # queue query then reads just those rows. A common word matches too many to list: the queue query instead walks
    # the queue newest first and tests each ticket, and stops once a page is full. Which case it is cannot be left to
    # the planner: full-text estimates for rare terms are guesses (unique values such as addresses have no
    # statistics), and a wrong guess turns a 5 ms search into a scan of every ticket.
    candidates = list(ticket_search_candidates(text=text)[: SEARCH_CANDIDATES + 1])
    if len(candidates) <= SEARCH_CANDIDATES:
        return Q(pk__in=set(candidates))
    return (
        Q(pk__in=Ticket.objects.alias(document=SimpleVector("subject")).filter(document=query).values("pk"))
        | Q(
            Exists(
                Message.objects.alias(document=SimpleVector("text")).filter(ticket_id=OuterRef("pk"), document=query)
            )
        )
        | Q(customer_id__in=_customers(query, text))
    )


def ticket_search_candidates(*, text: str) -> QuerySet:
    """Ids of matching tickets (PostgreSQL), possibly repeated: a UNION ALL of index scans, so that a LIMIT stops it
    early. Not scoped to what anyone may see: only ever use it inside a query that is."""
    query = _query(text)
    by_subject = Ticket.objects.alias(document=SimpleVector("subject")).filter(document=query)
    by_text = Message.objects.alias(document=SimpleVector("text")).filter(document=query)
    by_customer = Ticket.objects.filter(customer_id__in=_customers(query, text))
    return by_subject.values_list("pk", flat=True).union(
        by_text.values_list("ticket_id", flat=True), by_customer.values_list("pk", flat=True), all=True
    )


def _query(text: str) -> SearchQuery:
    # websearch syntax: words are AND-ed, "quoted phrases", "or", -excluded; never a syntax error.
    return SearchQuery(text, config="simple", search_type="websearch")


def _customers(query: SearchQuery, text: str) -> QuerySet:
    """Customers by name (full text), or by an identity written in full: an email address, a phone number in any
    usual notation, an external id. Identities are matched exactly through their unique index, not by full text:
    the ``simple`` parser keeps an address as one word anyway, and splits a phone number written with spaces."""
    by_name = Customer.objects.alias(document=SimpleVector("name")).filter(document=query).values("pk")
    identities = Q(kind=CustomerIdentity.Kind.EXTERNAL, value=text)
    for kind in (CustomerIdentity.Kind.EMAIL, CustomerIdentity.Kind.PHONE):
        try:
            identities |= Q(kind=kind, value=normalise_identity(kind, text))
        except ValueError:
            continue
    by_identity = CustomerIdentity.objects.filter(identities).values("customer_id")
    return by_name.union(by_identity, all=True)


def _substring_q(text: str) -> Q:
    messages = Message.objects.filter(text__icontains=text).values("ticket_id")
    customers = Customer.objects.filter(
        Q(name__icontains=text) | Q(pk__in=CustomerIdentity.objects.filter(value__icontains=text).values("customer_id"))
    ).values("pk")
    return Q(subject__icontains=text) | Q(pk__in=messages) | Q(customer_id__in=customers)
