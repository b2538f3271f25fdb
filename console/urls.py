from django.urls import path

from console.routes import customers, queues, settings, tickets
from console.views.auth import LoginView, LogoutView, home

app_name = "console"

urlpatterns = [
    path("", home, name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    *queues.urlpatterns,
    *tickets.urlpatterns,
    *customers.urlpatterns,
    *settings.urlpatterns,
]
