"""Downloading one MMS media file from Twilio, and nothing else: the HTTP half of ``inbound_media_fetch``.

A payload can name any URL, so this module is an SSRF guard first. The first URL must be Twilio's REST API host,
over https, under the channel's own account; redirects are followed by hand, a few hops at most, and only to the
hosts Twilio serves media from. The Twilio credentials go to the API host only, never to a CDN. The body is
streamed under a hard byte cap and a wall-clock deadline, and its type must be one we accept.

It touches no database row: it returns the bytes or raises one of the three outcomes below, and the service
decides what the row becomes.
"""

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from helpdesk.text import ascii_int

TWILIO_API_HOST = "api.twilio.com"
# Where Twilio's media URL (on the API host) redirects to: ``mms.twiliocdn.com`` (short-lived URLs when HTTP auth
# is enforced on media) and, for media stored before that, the S3 host under the ``media.twiliocdn.com`` bucket.
# Source: Twilio's "Protect Media Access with HTTP Basic Authentication for Programmable Messaging" support page.
# A host here is matched exactly; a leading dot matches any sub-domain; a (host, path prefix) pair allows only
# that prefix on a shared host (any S3 customer's bucket lives on the same host).
MEDIA_REDIRECT_HOSTS = (TWILIO_API_HOST, ".twiliocdn.com", ("s3-external-1.amazonaws.com", "/media.twiliocdn.com/"))
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CONNECT_TIMEOUT_SECONDS = 5.0


class MediaRefused(Exception):
    """We will not fetch or keep it (not Twilio's URL, a redirect elsewhere, too large, a type we do not accept)."""


class MediaFetchFailed(Exception):
    """The provider answered that it will not give it (4xx): trying again would not help."""


class MediaFetchTransient(Exception):
    """A network error, a timeout, a 5xx or a 429: it may pass, so the caller retries."""


@dataclass(frozen=True)
class FetchedMedia:
    content: bytes
    content_type: str


def media_http_transport() -> httpx.BaseTransport | None:
    """``None``: the network. Tests replace this function to put an ``httpx.MockTransport`` in Twilio's place;
    everything else about the client (timeouts, no automatic redirects, headers) stays as in production."""
    return None


def media_http_client(*, timeout_seconds: float) -> httpx.Client:
    return httpx.Client(
        transport=media_http_transport(),
        timeout=httpx.Timeout(timeout_seconds, connect=min(CONNECT_TIMEOUT_SECONDS, timeout_seconds)),
        follow_redirects=False,
        # Media is compressed already; a compressed body could also grow far past the cap in one decoded chunk.
        headers={"Accept-Encoding": "identity"},
        trust_env=False,  # a proxy from the environment would see the credentials and change where we connect
    )


def media_type(value: str) -> str:
    """``image/jpeg; charset=x`` -> ``image/jpeg``."""
    return (value or "").split(";", 1)[0].strip().lower()


def twilio_media_url_check(*, url: str, account_sid: str) -> None:
    """Raise ``MediaRefused`` unless ``url`` is https on Twilio's API host, under ``account_sid``'s account."""
    if not account_sid:
        raise MediaRefused("the channel has no Twilio account_sid to check the media URL against")
    parts = _split(url)
    if parts.scheme != "https" or parts.hostname != TWILIO_API_HOST or parts.port not in (None, 443):
        raise MediaRefused(f"not a Twilio media URL (host {parts.hostname or '?'})")
    if parts.username is not None or parts.password is not None:
        raise MediaRefused("not a Twilio media URL (credentials in the URL)")
    if not parts.path.startswith(f"/2010-04-01/Accounts/{account_sid}/") or "/../" in parts.path + "/":
        raise MediaRefused("not a media URL of this channel's Twilio account")


def _split(url: str):
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError as exc:
        raise MediaRefused("not a valid URL") from exc
    return parts


def _redirect_allowed(url: str) -> bool:
    parts = _split(url)
    if parts.scheme != "https" or parts.port not in (None, 443) or parts.username or parts.password:
        return False
    host = (parts.hostname or "").lower()
    for allowed in MEDIA_REDIRECT_HOSTS:
        if isinstance(allowed, tuple):
            matched = host == allowed[0] and parts.path.startswith(allowed[1])
        elif allowed.startswith("."):
            matched = host.endswith(allowed) and len(host) > len(allowed)
        else:
            matched = host == allowed
        if matched:
            return True
    return False


def twilio_media_download(
    *,
    url: str,
    account_sid: str,
    auth_token: str,
    max_bytes: int,
    allowed_types: list[str] | tuple[str, ...],
    timeout_seconds: float,
) -> FetchedMedia:
    """Fetch one media URL of a Twilio inbound message. Raises ``MediaRefused``, ``MediaFetchFailed`` or
    ``MediaFetchTransient``; never sends a request to a URL that failed ``twilio_media_url_check``."""
    twilio_media_url_check(url=url, account_sid=account_sid)
    allowed = {media_type(value) for value in allowed_types}
    # For the whole download, not one read: a peer dripping a byte every few seconds never trips a read timeout.
    # Three timeouts' worth leaves room for a few redirects and a slow but honest 5 MB.
    deadline = time.monotonic() + timeout_seconds * 3
    try:
        with media_http_client(timeout_seconds=timeout_seconds) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                host = urlsplit(url).hostname
                auth = (account_sid, auth_token) if host == TWILIO_API_HOST else None
                with client.stream("GET", url, auth=auth) as response:
                    if response.status_code in REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise MediaFetchFailed(f"HTTP {response.status_code} from {host} without a Location")
                        url = str(response.url.join(location))
                        if not _redirect_allowed(url):
                            raise MediaRefused(f"redirect to a host that does not serve Twilio media ({_host(url)})")
                        continue
                    _raise_for_status(response, host)
                    return _read(response, max_bytes=max_bytes, allowed=allowed, deadline=deadline)
    except httpx.TransportError as exc:
        raise MediaFetchTransient(f"{type(exc).__name__} fetching from {_host(url)}") from exc
    raise MediaFetchFailed(f"more than {MAX_REDIRECTS} redirects")


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _raise_for_status(response: httpx.Response, host: str) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        raise MediaFetchTransient(f"HTTP {status} from {host}")
    if status >= 300 or status < 200:
        raise MediaFetchFailed(f"HTTP {status} from {host}")


def _read(response: httpx.Response, *, max_bytes: int, allowed: set[str], deadline: float) -> FetchedMedia:
    content_type = media_type(response.headers.get("content-type", ""))
    if content_type not in allowed:
        raise MediaRefused(f"content type {content_type or '(none)'} is not accepted")
    declared = ascii_int(response.headers.get("content-length", ""), max_digits=30)
    if declared is not None and declared > max_bytes:
        raise MediaRefused(f"{declared} bytes is over the {max_bytes}-byte limit")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        # Counted as it arrives: a missing or false Content-Length does not get more than the cap into memory.
        if size > max_bytes:
            raise MediaRefused(f"more than the {max_bytes}-byte limit")
        if time.monotonic() > deadline:
            raise MediaFetchTransient("the download took too long")
        chunks.append(chunk)
    return FetchedMedia(content=b"".join(chunks), content_type=content_type)
