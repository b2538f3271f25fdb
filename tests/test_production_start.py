"""A production start (DEBUG=false) needs no manual step: the web server collects its static files when they are
missing or stale, or refuses to start and says what to do (helpdesk/staticfiles.py)."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from helpdesk.staticfiles import static_files_collect_if_stale
from tests.channels_app.smtp_peer import free_port
from tests.test_celery_worker import database_url_of_this_test

BASE_DIR = Path(settings.BASE_DIR)
START_SECONDS = 90
MANIFEST = "staticfiles.json"
PRODUCTION_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def _get(url: str) -> tuple[int, Message, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # our own loopback server
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def production_server(tmp_path, db):
    """uvicorn serving helpdesk.asgi with the production settings, DEBUG=false, and a var/ folder (STATIC_ROOT
    inside) where nothing was ever collected."""
    var_dir = tmp_path / "var"
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "DEBUG": "false",
        "HELPDESK_VAR_DIR": str(var_dir),
        "DATABASE_URL": database_url_of_this_test(),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    log_path = tmp_path / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "helpdesk.asgi:application", "--host", "127.0.0.1"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "--port", str(port), "--lifespan", "off"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if _get(f"{base_url}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"uvicorn did not start:\n{log_path.read_text(errors='replace')}")
        yield base_url, var_dir / "static", log_path
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.services
def test_a_production_server_started_without_collectstatic_serves_the_console(production_server):
    base_url, static_root, log_path = production_server

    status, _, body = _get(f"{base_url}/console/login/")

    assert status == 200, log_path.read_text(errors="replace")
    page = body.decode()
    stylesheet = next(part.split('"')[0] for part in page.split('href="')[1:] if part.startswith("/static/console/"))
    # A hashed name, as collectstatic writes it: the file may be cached for a year, a new version gets a new name.
    assert stylesheet != "/static/console/console.css"
    assert stylesheet.startswith("/static/console/console.") and stylesheet.endswith(".css")
    asset_status, asset_headers, asset = _get(base_url + stylesheet)
    assert asset_status == 200
    assert b".topbar" in asset
    assert "immutable" in asset_headers["Cache-Control"]
    assert json.loads((static_root / MANIFEST).read_text())["paths"]["console/console.css"] == stylesheet.removeprefix(
        "/static/"
    )
    assert "helpdesk.static_files_collected" in log_path.read_text(errors="replace")


@pytest.fixture
def production_static(settings, tmp_path):
    settings.DEBUG = False
    settings.STORAGES = PRODUCTION_STORAGES
    settings.STATIC_ROOT = tmp_path / "static"
    # Django's test signals rebuild the process-wide staticfiles storage for these settings and again after.
    return Path(settings.STATIC_ROOT)


def test_collects_once_then_starts_without_collecting_again(production_static):
    assert static_files_collect_if_stale() is True
    manifest_written_at = (production_static / MANIFEST).stat().st_mtime_ns

    assert static_files_collect_if_stale() is False
    assert (production_static / MANIFEST).stat().st_mtime_ns == manifest_written_at


def test_a_source_file_newer_than_the_collected_files_collects_again(production_static):
    """New code deployed onto an old STATIC_ROOT: its pages would ask the manifest for names it does not have."""
    static_files_collect_if_stale()
    manifest = production_static / MANIFEST
    collected = json.loads(manifest.read_text())
    del collected["paths"]["console/console.js"]
    manifest.write_text(json.dumps(collected))

    assert static_files_collect_if_stale() is True
    assert "console/console.js" in json.loads(manifest.read_text())["paths"]


def test_a_static_root_that_cannot_be_written_stops_the_start_with_what_to_do(production_static, tmp_path, settings):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    settings.STATIC_ROOT = not_a_folder / "static"  # no process, root included, can create a folder there

    with pytest.raises(ImproperlyConfigured) as raised:
        static_files_collect_if_stale()

    message = str(raised.value)
    assert str(not_a_folder / "static") in message
    assert "python manage.py collectstatic --noinput" in message
    assert not (not_a_folder / "static").exists()


def test_nothing_is_collected_with_debug_or_without_a_manifest_storage(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.DEBUG = True
    settings.STORAGES = PRODUCTION_STORAGES
    assert static_files_collect_if_stale() is False

    settings.DEBUG = False
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    settings.STORAGES = {**PRODUCTION_STORAGES, "staticfiles": plain}
    assert static_files_collect_if_stale() is False
    assert not (tmp_path / "static").exists()


def test_the_image_copies_every_app_of_the_project():
    """The production image (Dockerfile) holds the code of every installed app that lives in this repository; one
    left out fails the image's collectstatic and every start. The image copies the build context whole, less what
    .dockerignore names: no app may be named there."""
    copied = {
        line.split()[1].rstrip("/")
        for line in (BASE_DIR / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and not line.startswith("COPY --from")
    }
    ignored = {
        line.strip().strip("/")
        for line in (BASE_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    local_apps = {
        app.split(".")[0] for app in settings.INSTALLED_APPS if (BASE_DIR / app.split(".")[0] / "__init__.py").exists()
    }

    assert "." in copied
    assert local_apps & ignored == set()
    assert {"manage.py", "pyproject.toml"} & ignored == set()
