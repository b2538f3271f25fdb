"""Sanitising message HTML with nh3 (Ammonia): no script, no event handlers, no javascript: links."""

import html as html_lib
import re

import nh3

_ALLOWED_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
_WHITESPACE_RUNS = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_BLOCK_ENDS = re.compile(r"(?i)<\s*(br\s*/?|/p|/div|/li|/tr|/h[1-6]|/blockquote)\s*>")


def sanitise_html(value: str) -> str:
    if not value:
        return ""
    return nh3.clean(
        value,
        url_schemes=_ALLOWED_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def html_to_text(value: str) -> str:
    """A readable plain-text rendering of HTML, for messages that arrived with HTML only."""
    if not value:
        return ""
    with_breaks = _BLOCK_ENDS.sub("\n", value)
    stripped = nh3.clean(with_breaks, tags=set(), clean_content_tags={"script", "style", "head", "title"})
    text = html_lib.unescape(stripped)
    lines = [_WHITESPACE_RUNS.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
