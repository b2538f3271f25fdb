from django.urls import path

from customers.api import views
from tickets.api.timeline import CustomerTimelineApi

urlpatterns = [
    path("customers", views.CustomerListUpsertApi.as_view(), name="customer-list"),
    path("customers/<int:customer_id>", views.CustomerDetailApi.as_view(), name="customer-detail"),
    path("customers/<int:customer_id>/timeline", CustomerTimelineApi.as_view(), name="customer-timeline"),
    path(
        "customers/<int:customer_id>/events",
        views.CustomerContextEventCreateApi.as_view(),
        name="customer-events",
    ),
]
