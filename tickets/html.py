"""Message HTML made safe to show in the agent console, with nh3 (Ammonia).

What ``sanitise_html`` guarantees about its output:

- no script, no event handlers, no ``<iframe>``/``<form>``/``<base>``/``<meta>``/``<style>``, no ``style``
  attributes at all (so no CSS ``url()`` or ``expression()``), no ``background`` attributes;
- links only to absolute http(s), mailto and tel URLs, opened with ``target="_blank"`` and
  ``rel="noopener noreferrer nofollow"``;
- nothing that loads by itself from a third party: a remote image keeps its URL in ``data-remote-src`` (and
  ``data-remote-srcset``) instead of ``src``, so tracking pixels do not fire and a console can offer "load remote
  images" later. ``src`` survives only as ``cid:`` (rewritten to our attachment URL once the attachments are
  stored, see ``html_inline_images``) or a small raster ``data:`` image (signatures commonly inline their logo
  that way; SVG and anything large are dropped). A relative URL, our own attachment URLs included, is dropped: a
  sender could otherwise show another ticket's attachment as if it were theirs.

Sanitising its own output changes nothing. Run it before ``html_inline_images``, never after: the attachment
URLs that one puts in would be dropped.
"""

import html as html_lib
import re
from urllib.parse import unquote

import nh3

_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|jpg|webp);base64,[A-Za-z0-9+/=\s]+$", re.IGNORECASE)
MAX_DATA_IMAGE_CHARS = 128 * 1024
_LINK_SCHEMES = ("http", "https", "mailto", "tel")
_REMOTE_SCHEMES = ("http", "https")
# Browsers ignore ASCII whitespace and control characters inside a scheme ("java\tscript:").
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")

_ATTRIBUTES = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    "img": {
        "src",
        "srcset",
        "width",
        "height",
        "align",
        "alt",
        "title",
        "data-remote-src",
        "data-remote-srcset",
        "data-cid",
    },
}
# Text inside these is dropped with the tag, not shown as text.
_CLEAN_CONTENT_TAGS = {
    "script",
    "style",
    "head",
    "title",
    "iframe",
    "object",
    "embed",
    "noscript",
    "template",
    "svg",
    "math",
    "select",
    "textarea",
    "button",
}

_WHITESPACE_RUNS = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_PRE_BLOCK = re.compile(r"(?is)(<pre\b.*?</pre\s*>)")
_SOURCE_LINE_BREAKS = re.compile(r"[\r\n]+")
_BLOCK_ENDS = re.compile(
    r"(?i)<\s*(br\s*/?|hr\b[^>]*|/p|/div|/li|/tr|/h[1-6]|/blockquote|/pre|/table|/ul|/ol|/form)\s*>"
)

# nh3's output is html5ever's serialisation: every attribute is name="value" with '"' and '&' escaped, and '<'
# in text is escaped, so these patterns see exactly the tags and attributes a browser would.
_IMG_TAG = re.compile(r'<img((?:\s+[^\s"\'>/=]+(?:="[^"]*")?)*)\s*/?>')
_LINK_TAG = re.compile(r'<a((?:\s+[^\s"\'>/=]+(?:="[^"]*")?)*)\s*/?>')
_ATTRIBUTE = re.compile(r'\s+([^\s"\'>/=]+)(?:="([^"]*)")?')


def sanitise_html(value: str) -> str:
    """Safe HTML for storage and display (see the module docstring for what that means)."""
    if not value:
        return ""
    cleaned = nh3.clean(
        value,
        tags=set(nh3.ALLOWED_TAGS),
        clean_content_tags=_CLEAN_CONTENT_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https", "mailto", "tel", "cid", "data"},
        # rel and target are set below, in a fixed order (nh3 adds attributes in no fixed order).
        link_rel=None,
        strip_comments=True,
    )
    return _LINK_TAG.sub(_link_opening_apart, _IMG_TAG.sub(_image_without_remote_source, cleaned))


def html_inline_images(html: str, urls_by_content_id: dict[str, str]) -> str:
    """``html`` (already sanitised) with every ``src="cid:X"`` pointing at the stored attachment whose
    Content-ID is X: matched without case, angle brackets or URL-encoding. An image whose attachment is unknown
    loses its ``src`` (a broken image, never a request anywhere) and keeps the id in ``data-cid``."""
    if not html or "cid:" not in html.lower():
        return html
    urls = {content_id_key(key): url for key, url in urls_by_content_id.items() if key}

    def rewrite(match: re.Match) -> str:
        attributes = _attributes(match.group(1))
        source = attributes.get("src", "")
        if not source.lower().startswith("cid:"):
            return match.group(0)
        content_id = content_id_key(html_lib.unescape(source[4:]))
        url = urls.get(content_id)
        del attributes["src"]
        if url:
            attributes = {"src": html_lib.escape(url, quote=True), **attributes}
        else:
            attributes["data-cid"] = html_lib.escape(content_id, quote=True)
        return _img(attributes)

    return _IMG_TAG.sub(rewrite, html)


def content_id_key(value: str) -> str:
    """A Content-ID as ``cid:`` URLs and headers both spell it: no brackets, no URL-encoding, any case."""
    return unquote(value.strip()).strip().strip("<>").strip().lower()


def html_to_text(value: str) -> str:
    """A readable plain-text rendering of HTML, for messages that arrived with HTML only."""
    if not value:
        return ""
    # Line breaks in HTML source are spaces; only <pre> keeps them.
    pieces = _PRE_BLOCK.split(value)
    joined = "".join(piece if index % 2 else _SOURCE_LINE_BREAKS.sub(" ", piece) for index, piece in enumerate(pieces))
    with_breaks = _BLOCK_ENDS.sub("\n", joined)
    stripped = nh3.clean(with_breaks, tags=set(), clean_content_tags=_CLEAN_CONTENT_TAGS)
    text = html_lib.unescape(stripped)
    lines = [_WHITESPACE_RUNS.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "href":
        return value if _scheme(value) in _LINK_SCHEMES else None
    if tag != "img":
        return value
    if attribute == "src":
        scheme = _scheme(value)
        if scheme in _REMOTE_SCHEMES or scheme == "cid":
            return value
        if scheme == "data":
            return value if len(value) <= MAX_DATA_IMAGE_CHARS and _DATA_IMAGE.match(value.strip()) else None
        return None
    if attribute == "data-remote-src":
        return value if _scheme(value) in _REMOTE_SCHEMES else None
    return value


def _scheme(url: str) -> str:
    match = _SCHEME.match(_IGNORED_IN_SCHEME.sub("", html_lib.unescape(url)))
    return match.group(1).lower() if match else ""


def _image_without_remote_source(match: re.Match) -> str:
    attributes = _attributes(match.group(1))
    source = attributes.get("src")
    srcset = attributes.pop("srcset", None)
    changed = srcset is not None
    if srcset:
        attributes["data-remote-srcset"] = srcset
    if source is not None and _scheme(source) in _REMOTE_SCHEMES:
        del attributes["src"]
        attributes["data-remote-src"] = source
        changed = True
    return _img(attributes) if changed else match.group(0)


def _link_opening_apart(match: re.Match) -> str:
    attributes = {
        **{name: value for name, value in _attributes(match.group(1)).items() if name not in ("rel", "target")},
        "target": "_blank",
        "rel": "noopener noreferrer nofollow",
    }
    return "<a" + "".join(f' {name}="{value}"' for name, value in attributes.items()) + ">"


def _attributes(serialised: str) -> dict[str, str]:
    """Attributes of a serialised tag, values left escaped as they were."""
    return {name: value or "" for name, value in _ATTRIBUTE.findall(serialised)}


def _img(attributes: dict[str, str]) -> str:
    return "<img" + "".join(f' {name}="{value}"' for name, value in attributes.items()) + ">"
