"""A Celery worker and beat, out of process, as deployed (docker-compose.yml's commands, the regular settings),
on a broker of the test's own and the test's database."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings

from tests.test_celery_worker import database_url_of_this_test, stop_worker

BASE_DIR = Path(settings.BASE_DIR)
READY_TIMEOUT_SECONDS = 60


class CeleryProcess:
    def __init__(self, *, kind: str, broker_url: str, redis_url: str, env: dict) -> None:
        self.kind = kind
        self.root = Path(tempfile.mkdtemp(prefix=f"helpdesk-faults-{kind}-"))
        self.log_path = self.root / f"{kind}.log"
        environment = dict(os.environ)
        environment.update(
            DJANGO_SETTINGS_MODULE="helpdesk.settings",
            DATABASE_URL=database_url_of_this_test(),
            CELERY_BROKER_URL=broker_url,
            REDIS_URL=redis_url,
            PYTHONUNBUFFERED="1",
            **env,
        )
        # helpdesk.settings_test sets it in the test process's environment; these must not run tasks eagerly.
        environment.pop("CELERY_TASK_ALWAYS_EAGER", None)
        command = [sys.executable, "-m", "celery", "-A", "helpdesk", kind, "--loglevel", "INFO"]
        if kind == "worker":
            command += ["--concurrency", "2", "--hostname", f"faults-{os.getpid()}@%h"]
        else:
            command += ["--schedule", str(self.root / "celerybeat-schedule")]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def wait_for_log(self, text: str, *, count: int = 1, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert self.is_alive(), f"the {self.kind} exited:\n{self.log()[-8000:]}"
            assert time.monotonic() < deadline, f"no {text!r} (x{count}) from the {self.kind}:\n{self.log()[-8000:]}"
            time.sleep(0.1)

    def stop(self) -> None:
        stop_worker(self.process)
