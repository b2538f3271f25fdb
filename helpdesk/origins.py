"""Web origins as browsers send them, compared in one form: the chat widget's CORS and allowed origins, and the
pages that may open an agent's websocket, both read them this way."""

from urllib.parse import urlsplit


def origin_normalise(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case, or None when ``value`` is not an http(s) origin (no path, query,
    credentials or fragment)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
