"""Which pages may open an agent's websocket: the desk's own (``PUBLIC_BASE_URL``, ``CSRF_TRUSTED_ORIGINS``), and
a page served by the same host the socket is opened on (Django's own same-origin rule for CSRF; the host must be
in ``ALLOWED_HOSTS``), so http://localhost:8000 and http://127.0.0.1:8000 both work in the demo.

The agent socket is authenticated by the session cookie, which a browser sends whatever page opens the socket;
without this check any site an agent visits could read their live events (cross-site websocket hijacking).
"""

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from helpdesk.origins import origin_normalise


def agent_origin_is_allowed(origin: str | None, *, host: str | None = None) -> bool:
    """``host``: the Host header of the websocket request; ``secure``-ness follows the origin's scheme, as a page
    opens wss:// from https:// and ws:// from http://."""
    normalised = origin_normalise(origin or "")
    if normalised is None:
        return False
    if host and _same_origin(normalised, host):
        return True
    for trusted in [settings.PUBLIC_BASE_URL, *settings.CSRF_TRUSTED_ORIGINS]:
        if normalised == origin_normalise(trusted):
            return True
        scheme, _, host = trusted.partition("://")
        # Django's wildcard form, "https://*.example.com", trusts every subdomain.
        if host.startswith("*.") and normalised.startswith(f"{scheme}://") and normalised.endswith(host[1:]):
            return True
    return False


def _same_origin(normalised_origin: str, host: str) -> bool:
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme = normalised_origin.partition("://")[0]
    return normalised_origin == origin_normalise(f"{scheme}://{host}")
