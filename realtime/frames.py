"""What a client may send over a websocket (agent and visitor alike), and how a frame that is not that is answered.

Every request a client sends is a small JSON object (``{"type": "typing", "ticket_id": 12, "is_typing": true}``),
so anything else is refused before it reaches a handler, and never with an exception (an exception in a consumer
drops the socket with no close code and, before, left its presence refreshed for good):

=====================================  ============================================================================
Frame                                  Answer
=====================================  ============================================================================
binary (or no text at all)             close 1003 (unsupported data): no client of ours sends one
over ``MAX_FRAME_CHARS`` characters    close 1009 (message too big)
over ``SERVER_MAX_FRAME_BYTES`` bytes  close 1009 by the server before the consumer reads it (uvicorn
                                       ``--ws-max-size``, set where the desk is started)
not JSON, or nested deeper than        an ``error`` frame, ``code`` "invalid_json"; the socket stays open (one bad
``MAX_JSON_DEPTH``                     frame from a buggy client is no reason to drop its live updates)
JSON, but not a request we know        an ``error`` frame, ``code`` "bad_request" (the consumers' own check)
=====================================  ============================================================================
"""

import json

# The longest request a client sends is well under 200 characters; room for fields added later.
MAX_FRAME_CHARS = 8192
# What uvicorn accepts at all (``--ws-max-size`` in the Dockerfile, docker-compose.yml and scripts/run_demo.py):
# above it the server closes with 1009 without buffering more. Its default is 16 MiB.
SERVER_MAX_FRAME_BYTES = 65536
# Requests are flat objects; a depth limit keeps a frame of 4,000 brackets from recursing in the parser.
MAX_JSON_DEPTH = 8

CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011


class InvalidFrame(ValueError):
    """A text frame that is not JSON we read: not JSON at all, or nested deeper than ``MAX_JSON_DEPTH``."""


def frame_parse(text: str):
    """The JSON value of a text frame of at most ``MAX_FRAME_CHARS``; ``InvalidFrame`` otherwise. The depth is
    checked before parsing, so no frame makes the parser recurse deeper than ``MAX_JSON_DEPTH``."""
    if json_depth_exceeds(text, MAX_JSON_DEPTH):
        raise InvalidFrame(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError: not JSON, or an integer of more than 4,300 digits
        raise InvalidFrame("not JSON") from exc


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether the JSON text ``text`` opens more than ``limit`` arrays or objects inside one another (brackets in
    strings do not count). Text that is not JSON may get either answer; the parser refuses it anyway."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the usual frame: too few brackets to nest that deep, decided without a loop
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
