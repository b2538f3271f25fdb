"""Which pages may open an agent's websocket: the desk's own (``PUBLIC_BASE_URL``, ``CSRF_TRUSTED_ORIGINS``).

The agent socket is authenticated by the session cookie, which a browser sends whatever page opens the socket;
without this check any site an agent visits could read their live events (cross-site websocket hijacking).
"""

from django.conf import settings

from chat.cors import origin_normalise


def agent_origin_is_allowed(origin: str | None) -> bool:
    normalised = origin_normalise(origin or "")
    if normalised is None:
        return False
    for trusted in [settings.PUBLIC_BASE_URL, *settings.CSRF_TRUSTED_ORIGINS]:
        if normalised == origin_normalise(trusted):
            return True
        scheme, _, host = trusted.partition("://")
        # Django's wildcard form, "https://*.example.com", trusts every subdomain.
        if host.startswith("*.") and normalised.startswith(f"{scheme}://") and normalised.endswith(host[1:]):
            return True
    return False
