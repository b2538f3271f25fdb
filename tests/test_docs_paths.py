"""The README and docs/ name files of the repository: links and `app/module.py`-style paths must exist, so a
module that moves (one folder per provider, tasks by concern) cannot leave the docs pointing at nothing."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TOP_LEVEL = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith("."))
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# `channels_app/providers/email/parsing.py`, `tests/e2e/`: a path under one of the repository's top-level folders.
CODE_PATH = re.compile(r"`((?:" + "|".join(map(re.escape, TOP_LEVEL)) + r")/[\w./-]*)`")
# Paths a document names on purpose that are not files of this checkout.
ELSEWHERE = {
    "docs/email-quotes.md": {"tests/text_quotations_test.py"},  # talon's repository, where fixtures came from
    "docs/providers.md": {  # the worked example: the provider a reader would add
        "channels_app/providers/vonage/",
        "channels_app/providers/vonage/adapter.py",
        "tests/channels_app/providers/vonage/",
        "tests/fixtures/vonage/",
    },
}
GENERATED = ("var/",)  # made at run time (demo database, media)
MIGRATION_NAME = re.compile(r"^\w+/\d{4}_\w+$")  # "tickets/0005_queue_search": app and migration, not a path


def _missing(doc: Path) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        if not (doc.parent / target).exists():
            missing.append(f"link {target}")
    allowed = ELSEWHERE.get(str(doc.relative_to(ROOT)), set())
    for path in CODE_PATH.findall(text):
        if "*" in path or path in allowed or path.startswith(GENERATED) or MIGRATION_NAME.match(path):
            continue
        if not (ROOT / path.rstrip("/")).exists():
            missing.append(f"path {path}")
    return missing


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_file_a_document_names_exists(doc):
    assert _missing(doc) == []
