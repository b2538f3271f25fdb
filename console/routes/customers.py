"""Console routes: customers (names are in the "console" namespace)."""

urlpatterns: list = []
