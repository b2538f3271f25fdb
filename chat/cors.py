"""Which origins may call a chat channel's widget API: each chat channel's own ``allowed_origins``.

django-cors-headers has no static allowed origins here; its ``check_request_enabled`` signal asks
``cors_request_allowed`` per request. The views check the same thing again (``origin_is_allowed``) and refuse a
request from an origin not on the list with 403, because CORS only stops a browser from reading the answer, not a
script elsewhere from sending the request.
"""

import re

from channels_app.models import Channel
from chat.channel_cache import chat_channel_active_get
from helpdesk.origins import origin_normalise

_WIDGET_API_PATH = re.compile(r"^/chat/api/(?P<public_key>[A-Za-z0-9_-]{1,40})/")
_UNSET = object()


def origin_is_allowed(*, channel: Channel, origin: str | None) -> bool:
    allowed = (channel.settings or {}).get("allowed_origins") or []
    normalised = origin_normalise(origin or "")
    if normalised is None or not isinstance(allowed, list):
        return False
    return normalised in {origin_normalise(item) for item in allowed if isinstance(item, str)}


def chat_channel_for_request(request) -> Channel | None:
    """The active chat channel a widget API path names, looked up once per request (the CORS middleware asks up
    to twice, the view once more), from the process's short-lived cache (``chat.channel_cache``)."""
    cached = getattr(request, "_chat_channel", _UNSET)
    if cached is not _UNSET:
        return cached
    match = _WIDGET_API_PATH.match(request.path_info)
    channel = None
    if match is not None:
        channel = chat_channel_active_get(public_key=match["public_key"])
    request._chat_channel = channel
    return channel


def cors_request_allowed(sender, request, **kwargs) -> bool:
    """django-cors-headers' signal: CORS headers only for a widget API request from one of its channel's origins.
    Called for every request of the site, so anything else is answered without a query."""
    if not request.path_info.startswith("/chat/api/"):
        return False
    channel = chat_channel_for_request(request)
    return channel is not None and origin_is_allowed(channel=channel, origin=request.headers.get("origin"))
