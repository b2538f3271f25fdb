"""The demo supervisor (scripts/run_demo.py) starts again a child that exits once the demo is up."""

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
WAIT_SECONDS = 60


def load_run_demo():
    spec = importlib.util.spec_from_file_location("run_demo", BASE_DIR / "scripts" / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_demo = load_run_demo()


@pytest.fixture
def supervisor():
    supervisor = run_demo.Supervisor()
    yield supervisor
    supervisor.stop()


def supervise_until(supervisor, condition, what: str) -> None:
    """Run the demo's watch loop until ``condition()`` holds."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {WAIT_SECONDS} s"
        supervisor.restart_exited()
        time.sleep(0.05)


def test_a_celery_worker_killed_under_the_demo_is_started_again_and_is_ready_again(supervisor, tmp_path):
    # Given the demo's own worker command, on its file-system broker in a directory of this test's own
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "HELPDESK_VAR_DIR": str(tmp_path),
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "filesystem://",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    command = run_demo.child_commands(python=sys.executable, port=0)["worker"]
    supervisor.start("worker", command, env)
    supervise_until(supervisor, supervisor.worker_ready.is_set, "ready worker")
    first = supervisor.processes["worker"]

    # When it is killed (as an out-of-memory kill or a crash would end it)
    supervisor.worker_ready.clear()
    os.killpg(first.pid, signal.SIGKILL)

    # Then a new worker is started, and becomes ready
    supervise_until(supervisor, supervisor.worker_ready.is_set, "worker ready again")
    second = supervisor.processes["worker"]
    assert second.pid != first.pid
    assert second.poll() is None
    assert first.poll() == -signal.SIGKILL


def test_a_child_that_keeps_exiting_waits_longer_each_time_up_to_the_maximum(supervisor, monkeypatch, capsys):
    monkeypatch.setattr(run_demo, "RESTART_DELAY_SECONDS", 0.05)
    monkeypatch.setattr(run_demo, "RESTART_DELAY_MAX_SECONDS", 0.2)
    exits_at_once = [sys.executable, "-c", "raise SystemExit(3)"]
    supervisor.start("beat", exits_at_once, dict(os.environ))
    pids, delays = [], []

    def started(times: int):
        def condition() -> bool:
            process = supervisor.processes["beat"]
            if not pids or pids[-1] != process.pid:
                pids.append(process.pid)
                if "beat" in supervisor.restart_delays:
                    delays.append(supervisor.restart_delays["beat"])
            return len(pids) > times

        return condition

    supervise_until(supervisor, started(4), "fifth start")

    assert delays == [0.05, 0.1, 0.2, 0.2]
    assert len(set(pids)) == 5
    assert "[demo] beat exited with code 3; starting it again in 0.05 s." in capsys.readouterr().err


def test_a_child_that_ran_a_while_before_exiting_is_started_again_after_the_shortest_pause(supervisor):
    supervisor.restart_delays["web"] = 30.0  # it had exited quickly, several times, before

    delay = supervisor._next_delay("web", ran_for=run_demo.RESTART_RESET_AFTER_SECONDS)

    assert delay == run_demo.RESTART_DELAY_SECONDS
