"""The web server collects its static files at start when they are missing or older than the code's.

With ``DEBUG=false`` the pages link hashed file names (``console.3f2a….css``, cache-busting: a year's cache for
each name, a new name for new content) that only ``collectstatic`` writes, into its manifest. A server started
without that step answered 500 on every page ("Missing staticfiles manifest entry"). So every web entry point
(helpdesk/asgi.py, helpdesk/wsgi.py) calls :func:`static_files_collect_if_stale` before its middleware indexes
STATIC_ROOT: the files are collected when the manifest is missing, lacks a source file, or is older than one (a
deploy of new code onto an old STATIC_ROOT). Several server processes starting at once collect once, under a file
lock. A STATIC_ROOT the process cannot write stops the start with a message that says what to do, instead of a
server that answers 500.
"""

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# collectstatic's own default ignore patterns: the files it would copy are the files compared here.
_IGNORE_PATTERNS = ["CVS", ".*", "*~"]
LOCK_NAME = ".collectstatic.lock"


def static_files_collect_if_stale() -> bool:
    """Collect the static files into STATIC_ROOT when the hashed-name manifest is missing or stale; True if it
    collected. Nothing to do with DEBUG (files are served from the apps) or a storage without a manifest.

    Raises ImproperlyConfigured, naming STATIC_ROOT and the command to run, when the files must be collected and
    cannot be."""
    backend = import_string(settings.STORAGES["staticfiles"]["BACKEND"])
    if settings.DEBUG or not issubclass(backend, ManifestFilesMixin):
        return False
    static_root = Path(settings.STATIC_ROOT)
    manifest = static_root / backend.manifest_name
    if not _is_stale(manifest):
        return False
    try:
        static_root.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(static_root / LOCK_NAME):
            # Another process may have collected while this one waited for the lock.
            if not _is_stale(manifest):
                return False
            logger.info("helpdesk.static_files_collecting")
            call_command("collectstatic", interactive=False, verbosity=0)
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"The static files are not collected in STATIC_ROOT ({static_root}) and this process could not collect "
            f"them: {exc}. Run `python manage.py collectstatic --noinput` as a user who may write there (or set "
            "HELPDESK_VAR_DIR to a writable folder), then start the server again."
        ) from exc
    # The process's storage reads the new manifest (collectstatic filled it in only when it used this instance).
    staticfiles_storage.hashed_files, staticfiles_storage.manifest_hash = staticfiles_storage.load_manifest()
    logger.info("helpdesk.static_files_collected")
    return True


def _is_stale(manifest: Path) -> bool:
    try:
        collected_at = manifest.stat().st_mtime
        collected = json.loads(manifest.read_text(encoding="utf-8")).get("paths", {})
    except (OSError, ValueError):
        return True
    for relative_path, source in _source_files():
        if relative_path not in collected or source.stat().st_mtime > collected_at:
            return True
    return False


def _source_files() -> Iterator[tuple[str, Path]]:
    """(the name collectstatic gives a file, its source path) for every file the finders would collect."""
    for finder in get_finders():
        for path, storage in finder.list(_IGNORE_PATTERNS):
            prefix = getattr(storage, "prefix", None)
            name = f"{prefix}/{path}" if prefix else path
            yield name.replace("\\", "/"), Path(storage.path(path))


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
