"""Text from providers and users made storable, and the numbers and limits read from it, the same way at every
entry point.

PostgreSQL stores neither NUL (``\\x00``: refused in text, and ``\\u0000`` in jsonb) nor a lone UTF-16 surrogate
(``\\ud800``, which JSON can escape but UTF-8 cannot encode). Either one in a message made a request answer 500, or
an inbound event fail on every attempt. The rule, applied where the data enters (the API's parsers, the channel
adapters' output, the console's query strings):

- NUL is removed: it is invisible in every rendering, so no reader loses anything they could have seen;
- a lone surrogate becomes U+FFFD, the replacement character, as a UTF-8 decoder marks a byte it cannot read: a
  character was there and is lost.

The raw payload of an inbound event is kept as bytes, as it arrived.
"""

import dataclasses
import re
from collections.abc import Mapping

REPLACEMENT_CHARACTER = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ASCII_INTEGER = re.compile(r"[0-9]+", re.ASCII)
_SIGNED_ASCII_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
# Far above any id we issue (PostgreSQL's bigint has 19 digits); a longer run of digits is not an id.
MAX_INTEGER_DIGITS = 18


def _replacement(match: re.Match) -> str:
    return "" if match.group() == "\x00" else REPLACEMENT_CHARACTER


def storable_text(value: str) -> str:
    """``value`` without NUL and with every lone surrogate replaced by U+FFFD. (A str holding a valid surrogate
    *pair* comes only from code that built one by hand; JSON decoding joins an escaped pair into one character.)"""
    if not _UNSTORABLE.search(value):
        return value
    return _UNSTORABLE.sub(_replacement, value)


def storable(value):
    """``value`` with every string in it made storable (``storable_text``): the keys and values of mappings, the
    items of lists and tuples, the fields of dataclasses. Other values are returned as they are (bytes included:
    they are stored as bytes). Iterative, so a deeply nested value cannot exhaust the stack; unchanged parts are
    returned as the same objects."""
    return _Storable().clean(value)


class _Storable:
    def clean(self, root):
        # An explicit stack of (value, on_done) frames, post-order: children are cleaned before their parent is
        # rebuilt, and a parent is rebuilt only when one of its children changed.
        results: list = []
        stack: list = [("visit", root)]
        while stack:
            action, item = stack.pop()
            if action == "visit":
                self._visit(item, stack, results)
            else:
                builder, original, count = item
                children = results[len(results) - count :] if count else []
                del results[len(results) - count :]
                results.append(builder(original, children))
        return results[0]

    def _visit(self, value, stack: list, results: list) -> None:
        if isinstance(value, str):
            results.append(storable_text(value))
        elif isinstance(value, Mapping):
            items = list(value.items())
            stack.append(("build", (_rebuild_mapping, value, 2 * len(items))))
            for key, item in reversed(items):
                stack.append(("visit", item))
                stack.append(("visit", key))
        elif isinstance(value, list | tuple):
            stack.append(("build", (_rebuild_sequence, value, len(value))))
            stack.extend(("visit", item) for item in reversed(value))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            names = [field.name for field in dataclasses.fields(value)]
            stack.append(("build", (_rebuild_dataclass(names), value, len(names))))
            stack.extend(("visit", getattr(value, name)) for name in reversed(names))
        else:
            results.append(value)


def _rebuild_mapping(original: Mapping, children: list):
    pairs = list(zip(children[0::2], children[1::2], strict=True))
    if all(
        key is old_key and item is old_item
        for (key, item), (old_key, old_item) in zip(pairs, original.items(), strict=True)
    ):
        return original
    return dict(pairs)


def _rebuild_sequence(original, children: list):
    if all(child is item for child, item in zip(children, original, strict=True)):
        return original
    return tuple(children) if isinstance(original, tuple) else children


def _rebuild_dataclass(names: list[str]):
    def rebuild(original, children: list):
        changes = {
            name: child for name, child in zip(names, children, strict=True) if child is not getattr(original, name)
        }
        return dataclasses.replace(original, **changes) if changes else original

    return rebuild


def ascii_int(value, *, max_digits: int = MAX_INTEGER_DIGITS, is_signed: bool = False) -> int | None:
    """The integer ``value`` spells in ASCII digits (surrounding spaces allowed), or None. Non-negative unless
    ``is_signed`` (then a leading minus is read too: "-3" is a number, only out of a range).

    Not ``str.isdigit()`` then ``int()``: ``"²".isdigit()`` is true and ``int("²")`` raises, and ``int()`` itself
    reads Arabic-Indic digits, underscores and a plus sign. An id from a URL, a form or a provider is ASCII digits.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 or is_signed else None
    if not isinstance(value, str):
        return None
    value = value.strip()
    pattern = _SIGNED_ASCII_INTEGER if is_signed else _ASCII_INTEGER
    if len(value.removeprefix("-")) > max_digits or not pattern.fullmatch(value):
        return None
    return int(value)


def text_within_limit(text: str, *, limit: int) -> tuple[str, bool]:
    """``(text, False)`` when it has at most ``limit`` characters; otherwise its start followed by a visible note
    saying it was shortened, ``limit`` characters in all, and True. For messages a provider delivers, which cannot
    be refused without the provider retrying them forever: the full text stays in the raw payload."""
    if len(text) <= limit:
        return text, False
    note = (
        f"\n\n[Shortened: this message has {len(text):,} characters and the limit is {limit:,}. "
        "The whole message is kept as it arrived.]"
    )
    return (text[: max(limit - len(note), 0)] + note)[:limit], True
