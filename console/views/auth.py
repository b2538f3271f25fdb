"""Signing in and out of the console (Django's own views, with the console's templates)."""

from django.contrib.auth import views as auth_views
from django.shortcuts import redirect

from console.views.access import agent_required


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@agent_required
def home(request):
    return redirect("console:queue", queue="mine")
