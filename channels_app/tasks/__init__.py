"""Celery entry points of the channels, one module per concern: thin, plain ids, safe to run twice.

Each task module imports the service it runs; a service that enqueues imports the task module below it. This
package imports none of its modules (a face that imported them all would close a circle through those services):
``ChannelsAppConfig.ready`` loads ``MODULES``, so every process, the worker included, registers every task.
"""

from importlib import import_module

MODULES = (
    "channels_app.tasks.inbound",
    "channels_app.tasks.deliveries",
    "channels_app.tasks.media",
    "channels_app.tasks.mailboxes",
    "channels_app.tasks.sweeps",
    "channels_app.tasks.webhook_nonces",
)


def task_modules_load() -> None:
    for module in MODULES:
        import_module(module)
