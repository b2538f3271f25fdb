"""Console routes: settings (names are in the "console" namespace)."""

urlpatterns: list = []
