"""Reading JSON that arrives from outside (API bodies, the chat widget, provider webhooks) so that no body can make
the reader fail with anything but a ``JsonInputError`` that names the problem.

What it guards against, besides a syntax error:

- nesting: ``json.loads`` recurses once per level, and a body of 100,000 ``[`` raised ``RecursionError`` (a 500)
  where a 400 was due; storing or serialising a merely deep value recursed again later. The depth is measured on the
  text, without recursion and before anything is parsed;
- numbers PostgreSQL's jsonb cannot hold: ``NaN``, ``Infinity`` and a float that overflows to infinity (``1e999``),
  and integers longer than Python converts (``ValueError``, not a ``JSONDecodeError``);
- text PostgreSQL cannot store (NUL, lone surrogates): made storable with ``helpdesk.text.storable``.

Reusable by any JSON entry point: ``json_input_loads(raw)`` for a whole body, ``json_depth_check(text)`` alone.
"""

import json
import math
import re

from helpdesk.text import storable

# Deeper than any object a person's system sends (an order with lines with options is five or six levels), and far
# below where parsing, serialising and rendering recurse into trouble.
MAX_JSON_DEPTH = 64

# A JSON string (skipped whole, so brackets inside it do not count), or one bracket.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset("[{")


class JsonInputError(ValueError):
    """The body cannot be read as the JSON we take; the message says why, in words fit for a 400."""


def json_depth_check(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """``JsonInputError`` when arrays and objects in ``text`` nest deeper than ``max_depth``. A linear scan with a
    counter: the text need not be valid JSON (the parser that follows judges that)."""
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    for token in _TOKENS.finditer(text):
        character = token.group()
        if character in _OPENERS:
            depth += 1
            if depth > max_depth:
                raise JsonInputError(f"JSON is nested more than {max_depth} levels deep")
        elif character in "]}":
            depth -= 1


def json_input_loads(
    raw: bytes | bytearray | memoryview | str, *, encoding: str = "utf-8", max_depth: int = MAX_JSON_DEPTH
):
    """The JSON value of ``raw``, with its strings made storable. ``JsonInputError`` for a body that is not text in
    ``encoding``, not JSON, nested deeper than ``max_depth``, or holds a number jsonb cannot store."""
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = bytes(raw).decode(encoding)
        except UnicodeDecodeError as exc:
            raise JsonInputError(f"body is not {encoding.upper()}") from exc
        except LookupError as exc:
            raise JsonInputError(f"unknown charset {encoding!r}") from exc
    json_depth_check(text, max_depth=max_depth)
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except JsonInputError:
        raise
    except (ValueError, RecursionError) as exc:
        # An integer over Python's conversion limit (4,300 digits) raises a plain ValueError.
        raise JsonInputError(f"body is not JSON we accept: {exc}") from exc
    return storable(value)


def _refuse_constant(name: str):
    raise JsonInputError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"the number {text[:40]} is too large")
    return value
