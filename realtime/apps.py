from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """Live updates over websockets (Django Channels): publishing on commit, the consumers, presence.

    Separate from chat because the agent console's live updates use the same connection and events: chat is one
    client of it. Pushes are best-effort; the database is the truth, and clients catch up over REST.
    """

    name = "realtime"
    verbose_name = "Real time"
