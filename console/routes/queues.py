"""Console routes: queues (names are in the "console" namespace)."""

from django.urls import path

from console.views import queues

urlpatterns: list = [
    path("queues/<slug:queue>/", queues.queue, name="queue"),
]
