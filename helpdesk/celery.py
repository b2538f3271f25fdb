"""The Celery application: configured from Django settings (``CELERY_*``), tasks found in every app.

Every process that loads the project imports this module (``helpdesk/__init__.py``): the web server, the worker and
beat all get the Redis transport workaround below before their first broker connection.
"""

import os

from celery import Celery

from helpdesk.kombu_redis import kombu_redis_guard_install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

# Without it, a Redis outage at the wrong moment stops the worker for good (helpdesk/kombu_redis.py).
kombu_redis_guard_install()

app = Celery("helpdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
