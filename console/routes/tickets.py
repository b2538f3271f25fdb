"""Console routes: tickets (names are in the "console" namespace)."""

urlpatterns: list = []
