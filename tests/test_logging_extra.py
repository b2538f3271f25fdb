"""Log calls never pass ``extra`` keys that a ``LogRecord`` already has.

``logging`` raises ``KeyError("Attempt to overwrite 'created' in LogRecord")`` for such a key, but only when the
call's level is enabled: an ``info`` call with ``extra={"created": ...}`` turned every accepted email webhook into a
500 at the production level while a suite logging at WARNING stayed green. The suite now logs at INFO; this test
also catches the calls no test reaches (and ``debug`` calls, which raise only once someone turns DEBUG on).
"""

import ast
import logging
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_FOLDERS = ("helpdesk", "agents", "customers", "channels_app", "tickets", "chat", "realtime", "console")
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
RESERVED = set(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))) | {"message", "asctime"}


def _extra_keys(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS):
            continue
        for keyword in node.keywords:
            if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                found += [
                    (node.lineno, key.value)
                    for key in keyword.value.keys
                    if isinstance(key, ast.Constant) and isinstance(key.value, str)
                ]
    return found


def _product_modules() -> list[Path]:
    return sorted(
        path for folder in PRODUCT_FOLDERS for path in (ROOT / folder).rglob("*.py") if "migrations" not in path.parts
    )


def test_the_scan_sees_the_log_calls_it_checks():
    keys = [key for path in _product_modules() for _, key in _extra_keys(path)]
    # Structured logs are the house style: a scan that found none would be checking nothing.
    assert len(keys) > 50
    assert "channel_id" in keys


@pytest.mark.parametrize("path", _product_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_log_call_reuses_a_log_record_attribute(path):
    clashes = [(line, key) for line, key in _extra_keys(path) if key in RESERVED]
    assert clashes == []


def test_a_reserved_key_is_what_logging_refuses():
    # The premise of the scan: logging itself raises on these keys at an enabled level.
    logger = logging.getLogger("tests.logging_extra")
    logger.setLevel(logging.INFO)
    with pytest.raises(KeyError, match="created"):
        logger.info("tests.logging_extra", extra={"created": True})
