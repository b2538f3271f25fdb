"""How the docs run the desk in production (docker-compose.yml, docs/deploy/'s systemd units): each long-running
process is started again when it exits, for ever, and both run the same commands."""

import configparser
import getpass
import grp
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from tests.conftest import REQUIRE_SERVICES

BASE_DIR = Path(settings.BASE_DIR)
UNITS_DIR = BASE_DIR / "docs" / "deploy"
SERVICES = ("web", "worker", "beat")
INSTALL_DIR = "/opt/helpdesk"


def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(UNITS_DIR / name)
    return parser


def exec_start(service: str) -> list[str]:
    return shlex.split(unit(f"helpdesk-{service}.service")["Service"]["ExecStart"])


@pytest.mark.parametrize("service", [*SERVICES, "postgres", "redis"])
def test_compose_starts_every_long_running_service_again_when_it_exits(service):
    assert compose()["services"][service]["restart"] in {"always", "unless-stopped"}


def test_compose_keeps_redis_queued_tasks_across_a_restart():
    redis = compose()["services"]["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


@pytest.mark.parametrize("service", SERVICES)
def test_each_systemd_unit_starts_its_process_again_for_ever(service):
    parsed = unit(f"helpdesk-{service}.service")
    assert parsed["Service"]["Restart"] == "always"
    assert parsed["Unit"]["StartLimitIntervalSec"] == "0"  # systemd otherwise gives up after 5 starts in 10 s
    assert parsed["Unit"]["PartOf"] == "helpdesk.target"
    assert f"helpdesk-{service}.service" in unit("helpdesk.target")["Unit"]["Wants"].split()


@pytest.mark.parametrize("service", ["worker", "beat"])
def test_the_systemd_units_run_the_celery_commands_compose_runs(service):
    command = exec_start(service)
    expected = list(compose()["services"][service]["command"])
    assert command[0] == f"{INSTALL_DIR}/.venv/bin/celery"
    if "--schedule" in expected:  # beat's schedule file: the unit's state directory instead of compose's volume
        expected[expected.index("--schedule") + 1] = command[command.index("--schedule") + 1]
    assert command[1:] == expected[1:]


def test_the_systemd_web_unit_runs_the_server_compose_runs_on_loopback():
    command = exec_start("web")
    expected = list(compose()["services"]["web"]["command"])
    expected[expected.index("--host") + 1] = "127.0.0.1"  # behind the proxy on the same host
    assert command[0] == f"{INSTALL_DIR}/.venv/bin/uvicorn"
    assert command[1:] == expected[1:]


def test_the_systemd_units_are_valid_for_systemd(tmp_path):
    """``systemd-analyze verify`` on the units as installed in this checkout: every key known, every command
    there and executable."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        message = "needs systemd-analyze (Debian package systemd)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (HELPDESK_REQUIRE_SERVICES is set)")
        pytest.skip(message)
    environment_file = tmp_path / "helpdesk.env"
    environment_file.write_text("")
    units_dir = tmp_path / "units"
    units_dir.mkdir()
    for path in UNITS_DIR.glob("helpdesk*"):
        text = (
            path.read_text()
            .replace(INSTALL_DIR, str(BASE_DIR))
            .replace("/etc/helpdesk/helpdesk.env", str(environment_file))
            .replace("User=helpdesk", f"User={getpass.getuser()}")
            .replace("Group=helpdesk", f"Group={grp.getgrgid(os.getgid()).gr_name}")
        )
        (units_dir / path.name).write_text(text)
    units = sorted(str(path) for path in units_dir.iterdir())
    assert len(units) == 4

    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
