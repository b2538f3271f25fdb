from django.apps import AppConfig


class TimelineConfig(AppConfig):
    """The timeline: every change to a ticket or a customer as a row (type, actor, JSON parameters).

    Its own app because both ``tickets`` and ``customers`` write to it (a customer merge, an identity added, a
    ticket assigned) and it must sit below both: it imports neither, and refers to their models by name.
    """

    name = "timeline"
    verbose_name = "Timeline"
