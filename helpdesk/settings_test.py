"""Settings for the test suite: the real settings, with tasks run in-process and fast password hashing.

Tests that need a worker out of process (tests/test_celery_worker.py) start one on the Redis broker with the
regular settings, pointed at the test database.
"""

import os
import tempfile

os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")

from helpdesk.settings import *  # noqa: F403
from helpdesk.settings import VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = tempfile.mkdtemp(prefix="helpdesk-test-media-")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = os.environ.get("REDIS_URL") or "memory://"
# Production's logging at production's level: a log call that raises (a reserved LogRecord key in ``extra``) must
# fail a test, as it fails a request in production. LOG_LEVEL is not read here: the suite always logs at INFO.
LOGGING = {**LOGGING, "root": {**LOGGING["root"], "level": "INFO"}}  # noqa: F405
TEST_VAR_DIR = VAR_DIR
