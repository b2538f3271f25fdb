"""The agent console: server-rendered pages (Django templates + htmx from django-htmx) for agents and admins.

A separate app because it is large and only an edge: its views call the domain apps' services and selectors and
hold no domain logic of their own."""
