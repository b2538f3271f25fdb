"""Reads of customers."""

from django.db.models import QuerySet

from customers.models import Customer
from helpdesk.errors import NotFound


def customer_get(*, customer_id: int, with_identities: bool = True) -> Customer:
    customers = Customer.objects.prefetch_related("identities") if with_identities else Customer.objects.all()
    customer = customers.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("No such customer.")
    return customer


def customer_list(*, query: str = "") -> QuerySet[Customer]:
    customers = (
        Customer.objects.filter(merged_into__isnull=True).prefetch_related("identities").order_by("-updated_at", "-id")
    )
    if query:
        customers = customers.filter(name__icontains=query) | customers.filter(
            identities__value__icontains=query.lower()
        )
    return customers.distinct()
