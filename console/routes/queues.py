"""Console routes: queues (names are in the "console" namespace)."""

urlpatterns: list = []
