from django.urls import path

from outreach.views import unsubscribe_view

app_name = "outreach"

urlpatterns = [
    path("unsubscribe/<str:token>/", unsubscribe_view, name="unsubscribe"),
]
