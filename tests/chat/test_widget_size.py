"""The chat widget stays small and self-contained: one file under 30 KB gzipped, nothing loaded from another host,
and no API that parses text as HTML (every message is rendered as text)."""

import gzip
import re
from pathlib import Path

from django.conf import settings

WIDGET = Path(settings.BASE_DIR) / "chat" / "static" / "chat" / "widget.js"
MAX_GZIPPED_BYTES = 30 * 1024
# The one absolute URL the file may contain: the SVG namespace, a name that createElementNS needs and nothing fetches.
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def test_the_widget_is_at_most_30_kb_gzipped():
    raw = WIDGET.read_bytes()

    size = len(gzip.compress(raw, compresslevel=9))

    print(f"\nchat/static/chat/widget.js: {len(raw)} bytes, {size} bytes gzipped (limit {MAX_GZIPPED_BYTES})")
    assert 0 < size <= MAX_GZIPPED_BYTES


def test_the_widget_loads_nothing_from_another_host():
    source = WIDGET.read_text()

    urls = re.findall(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'`)]*""", source)

    assert urls == [SVG_NAMESPACE]
    assert not re.search(r"\bimport\s*\(|\bimportScripts\b|@import|\burl\(", source)


def test_the_widget_never_parses_text_as_html():
    source = WIDGET.read_text()

    forbidden = ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "DOMParser"]

    assert [name for name in forbidden if name in source] == []
    assert "textContent" in source
