"""Outreach: the messages the desk starts itself (routing notices, outage notifications, surveys).

A separate app because it sits above tickets, customers and the channels and is used by several later features;
see docs/outreach.md."""

from django.apps import AppConfig


class OutreachConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "outreach"
    verbose_name = "Outreach (messages the desk starts)"

    def ready(self) -> None:
        # Registers the tasks in every process, not only where a worker's autodiscovery runs: beat's sweep entry
        # names one (tests/channels_app/test_tasks.py checks a fresh process knows every beat entry's task).
        from outreach import tasks  # noqa: F401
