from django.urls import path

from agents.api import views

urlpatterns = [
    path("me", views.MeApi.as_view(), name="me"),
    path("teams", views.TeamListCreateApi.as_view(), name="team-list"),
    path("agents", views.AgentListCreateApi.as_view(), name="agent-list"),
    path("tokens", views.IntegrationTokenCreateApi.as_view(), name="token-create"),
]
