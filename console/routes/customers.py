"""Console routes: customers (names are in the "console" namespace)."""

from django.urls import path

from console.views import customers

urlpatterns: list = [
    path("customers/", customers.customer_list_view, name="customers"),
    path("customers/<int:customer_id>/", customers.customer_view, name="customer"),
    path("customers/<int:customer_id>/timeline/", customers.customer_timeline_view, name="customer-timeline"),
    path(
        "customers/<int:customer_id>/contact-preferences/",
        customers.customer_contact_preferences_view,
        name="customer-contact-preferences",
    ),
    path("customers/<int:customer_id>/merge/", customers.customer_merge_view, name="customer-merge"),
    path("customers/merges/<int:merge_id>/undo/", customers.customer_merge_undo_view, name="customer-merge-undo"),
]
