"""The new part of an HTML-only reply, without the quoted history.

Mail clients mark the quote in their markup: Gmail wraps it in ``div.gmail_quote``, Outlook puts
``div#divRplyFwdMsg`` (after an ``<hr>``) or a "From: / Sent: / To: / Subject:" block before it, Apple Mail and
Thunderbird use ``<blockquote type="cite">``, Yahoo ``div.yahoo_quoted``. Where there is no such markup, the
text lines are checked by the plain-text rules of ``quotes.py``: an attribution ("On ... wrote:"
in any language, wrapped or not), "-----Original Message-----", an Outlook header block, lines quoted with ">".
The HTML is cut at the first marker; when what is left has no text, or text follows a quoted block (an answer
written between or below the quotes), nothing is cut.
"""

import bisect
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from channels_app.providers.email import quotes
from tickets.html import html_to_text

# Elements that hold a quote and nothing else.
_QUOTE_CLASSES = {"gmail_quote", "gmail_quote_container"}
# Elements that start the quote: everything after them is history too.
_QUOTE_START_IDS = {"divrplyfwdmsg", "appendonsend"}
_ATTRIBUTION_CLASSES = {"moz-cite-prefix", "gmail_attr"}

_KEEP_WHOLE = -1
_NEWLINE = re.compile("\n")

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
}  # fmt: skip
_INVISIBLE = {"head", "script", "style", "title", "template"}
_PRESERVES_LINES = {"pre", "textarea"}
_END_TAG_SEARCH = 64
# Beyond what anyone types; parse_email keeps at most 400,000 characters of HTML anyway.
MAX_HTML_CHARS = 1_000_000


@dataclass(frozen=True)
class HtmlReply:
    html: str
    text: str
    full_text: str
    is_split: bool


def html_reply(html: str) -> HtmlReply:
    """The new part of ``html`` and its text, and the text of the whole; the whole of it (``is_split`` false)
    when no quote is found."""
    full_text = html_to_text(html)
    whole = HtmlReply(html=html, text=full_text, full_text=full_text, is_split=False)
    if not html or len(html) > MAX_HTML_CHARS:
        return whole
    try:
        document = _Document.parse(html)
    except Exception:
        # html.parser gives up on some malformed declarations; the message is then shown whole.
        return whole
    cut = document.quote_start()
    if cut is None:
        return whole
    new_html = html[:cut] + "".join(f"</{tag}>" for tag in reversed(document.open_at(cut)))
    new_text = html_to_text(new_html)
    if not new_text.strip():
        return whole
    return HtmlReply(html=new_html, text=new_text, full_text=full_text, is_split=True)


@dataclass
class _Element:
    tag: str
    start: int
    end: int | None
    attrs: dict


@dataclass
class _Line:
    start: int
    text: str


class _Document(HTMLParser):
    """Offsets of elements and of text lines in the source, so it can be cut exactly where a quote starts."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.html = html
        self._line_offsets = [0, *(match.end() for match in _NEWLINE.finditer(html))]
        self.elements: list[_Element] = []
        self.lines: list[_Line] = []
        self._stack: list[_Element] = []
        # How many open elements hide their text (script, style...) or keep its line breaks (pre): counted, so
        # that nothing walks the stack per token (mail can nest thousands of unclosed tags).
        self._invisible_depth = 0
        self._pre_depth = 0
        self._line_parts: list[str] = []
        self._line_start: int | None = None
        self._line_starts: list[int] | None = None

    @classmethod
    def parse(cls, html: str) -> "_Document":
        document = cls(html)
        document.feed(html)
        document.close()
        document._end_line()
        end = len(html)
        for element in document._stack:
            element.end = end
        return document

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_offsets[line - 1] + column

    def handle_starttag(self, tag, attrs):
        offset = self._offset()
        if tag in _BLOCK:
            self._end_line()
        element = _Element(
            tag=tag,
            start=offset,
            end=None,
            attrs={name.lower(): (value or "") for name, value in attrs},
        )
        self.elements.append(element)
        if tag in _VOID:
            element.end = offset + len(self.get_starttag_text() or "")
        else:
            self._push(element)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and self._stack and self._stack[-1].tag == tag:
            self._pop(len(self._stack) - 1, self._offset() + len(self.get_starttag_text() or ""))

    def handle_endtag(self, tag):
        offset = self._offset()
        if tag in _BLOCK:
            self._end_line()
        # A stray end tag is looked for only among the nearest open elements, as a bound on work per tag.
        for depth in range(len(self._stack) - 1, max(-1, len(self._stack) - 1 - _END_TAG_SEARCH), -1):
            if self._stack[depth].tag == tag:
                self._pop(depth, offset)
                break

    def _push(self, element: _Element) -> None:
        self._stack.append(element)
        self._invisible_depth += element.tag in _INVISIBLE
        self._pre_depth += element.tag in _PRESERVES_LINES

    def _pop(self, depth: int, end: int) -> None:
        for element in self._stack[depth:]:
            element.end = end
            self._invisible_depth -= element.tag in _INVISIBLE
            self._pre_depth -= element.tag in _PRESERVES_LINES
        del self._stack[depth:]

    def handle_data(self, data):
        if self._invisible_depth:
            return
        offset = self._offset()
        pieces = data.split("\n") if self._pre_depth else [data]
        for index, piece in enumerate(pieces):
            if index:
                self._end_line()
            if self._line_start is None and piece.strip():
                self._line_start = offset + len(piece) - len(piece.lstrip())
            self._line_parts.append(piece)
            offset += len(piece) + 1

    def _end_line(self) -> None:
        text = " ".join("".join(self._line_parts).split())
        if text and self._line_start is not None:
            self.lines.append(_Line(start=self._line_start, text=text))
        self._line_parts = []
        self._line_start = None

    def open_at(self, offset: int) -> list[str]:
        """Tags still open just before ``offset``, outermost first."""
        return [
            element.tag
            for element in self.elements
            if element.start < offset and element.tag not in _VOID and _end(element, self.html) >= offset
        ]

    # Finding the quote

    def quote_start(self) -> int | None:
        marked = self._marked_quote()
        if marked == _KEEP_WHOLE:
            return None
        candidates = [cut for cut in (marked, self._text_quote()) if cut is not None]
        if not candidates:
            return None
        cut = min(candidates)
        return self._attribution_before(cut)

    def _marked_quote(self) -> int | None:
        for element in self.elements:
            classes = _classes(element)
            element_id = element.attrs.get("id", "").lower()
            if element_id in _QUOTE_START_IDS or "outlookmessageheader" in classes:
                return self._hr_before(element.start)
            if classes & _ATTRIBUTION_CLASSES:
                continue
            if not (_is_quote_container(element) or self._is_attributed_blockquote(element)):
                continue
            if self._starts_with_forward(element.start, _end(element, self.html)):
                # A forward is the content, not history: keep it.
                continue
            if self._text_outside_quotes_after(_end(element, self.html)):
                # An answer written below or between the quotes: cutting would lose it.
                return _KEEP_WHOLE
            return element.start
        return None

    def _text_quote(self) -> int | None:
        texts = [line.text for line in self.lines]
        for index, line in enumerate(self.lines):
            text = line.text
            if quotes.is_forward_marker(text):
                # The headers of a forwarded message below are its content, not a quote.
                return None
            if text.startswith(">"):
                return self._hr_before(line.start)
            if quotes.quote_header_lines(texts, index):
                return line.start if quotes.is_attribution(text) else self._hr_before(line.start)
        return None

    def _hr_before(self, offset: int) -> int:
        """An ``<hr>`` right before the quote's first line is part of the quote (Outlook, Zimbra)."""
        rules = [element for element in self.elements if element.tag == "hr" and element.start < offset]
        if rules and not self._text_between(rules[-1].start, offset).strip():
            return rules[-1].start
        return offset

    def _attribution_before(self, cut: int) -> int:
        """Move the cut up over an "On ..., Ann wrote:" line just above it (outside the marked quote)."""
        before = self.lines[max(0, self._line_index(cut) - 2) : self._line_index(cut)]
        if before and quotes.is_attribution(before[-1].text):
            return before[-1].start
        if len(before) == 2 and quotes.is_attribution(f"{before[0].text} {before[1].text}"):
            return before[0].start
        return cut

    def _is_attributed_blockquote(self, element: _Element) -> bool:
        index = self._line_index(element.start)
        return element.tag == "blockquote" and index > 0 and quotes.ends_like_attribution(self.lines[index - 1].text)

    def _starts_with_forward(self, start: int, end: int) -> bool:
        first = self._line_index(start)
        last = min(first + 3, self._line_index(end))
        return any(quotes.is_forward_marker(line.text) for line in self.lines[first:last])

    def _line_index(self, offset: int) -> int:
        """How many lines start before ``offset``."""
        if self._line_starts is None:
            self._line_starts = [line.start for line in self.lines]
        return bisect.bisect_left(self._line_starts, offset)

    def _text_between(self, start: int, end: int, most: int | None = None) -> str:
        first, last = self._line_index(start), self._line_index(end)
        if most is not None:
            last = min(last, first + most)
        return " ".join(line.text for line in self.lines[first:last])

    def _text_outside_quotes_after(self, offset: int) -> str:
        quoted_until, texts = offset, []
        after = [
            element
            for element in self.elements
            if element.start >= offset and (element.tag == "blockquote" or _is_quote_container(element))
        ]
        quotes = iter(after)
        quote = next(quotes, None)
        for line in self.lines[self._line_index(offset) :]:
            while quote is not None and quote.start <= line.start:
                quoted_until = max(quoted_until, _end(quote, self.html))
                quote = next(quotes, None)
            if line.start >= quoted_until:
                texts.append(line.text)
        return " ".join(texts)


def _classes(element: _Element) -> set[str]:
    return {name.lower() for name in element.attrs.get("class", "").split()}


def _is_quote_container(element: _Element) -> bool:
    classes = _classes(element)
    return (
        bool(classes & _QUOTE_CLASSES)
        # Yahoo prefixes its class and id per message: "ydp5e1fyahoo_quoted".
        or any("yahoo_quoted" in name for name in classes)
        or "yahoo_quoted" in element.attrs.get("id", "").lower()
        or (element.tag == "blockquote" and element.attrs.get("type", "").lower() == "cite")
    )


def _end(element: _Element, html: str) -> int:
    return element.end if element.end is not None else len(html)
