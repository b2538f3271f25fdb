"""Reading the JSON payloads of the channels that take our own JSON shape (the API channel, the chat widget):
the same clear ``PayloadError`` for the same mistake, whichever channel it came through."""

from collections.abc import Mapping

from channels_app.adapters.base import PayloadError
from helpdesk.json_input import JsonInputError, json_input_loads
from helpdesk.text import storable


def json_object_load(payload) -> Mapping:
    """The payload (stored bytes, or an already decoded mapping) as a JSON object, its strings made storable
    (``helpdesk.text``). Bytes are read by ``helpdesk.json_input``: nesting is bounded before parsing, and numbers
    jsonb cannot hold are refused, each a ``PayloadError`` with the reason."""
    if isinstance(payload, Mapping):
        return storable(payload)
    try:
        data = json_input_loads(bytes(payload))
    except JsonInputError as exc:
        raise PayloadError(str(exc)) from exc
    if not isinstance(data, Mapping):
        raise PayloadError("body must be a JSON object")
    return data


def json_string(data: Mapping, key: str, *, required: bool = False, max_length: int | None = None) -> str:
    """``data[key]`` as a string ("" when absent or null); a ``PayloadError`` naming the key otherwise."""
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise PayloadError(f"'{key}' must be a string")
    if required and not value.strip():
        raise PayloadError(f"'{key}' is required")
    if max_length is not None and len(value) > max_length:
        raise PayloadError(f"'{key}' is longer than {max_length} characters")
    return value
