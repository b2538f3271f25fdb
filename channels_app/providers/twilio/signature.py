"""Checking that a webhook request comes from Twilio: ``X-Twilio-Signature`` with the ``twilio`` package's own
``RequestValidator`` (never a signature scheme of ours).

Twilio signs the URL it called plus the sorted form parameters, with the account's Auth Token (HMAC-SHA1), or,
when the request carries ``X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256``, with the
secret of that SharedKey. Used by the inbound message webhook and the status callback alike.
"""

import logging

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from channels_app.adapters.base import SignatureError
from channels_app.models import Channel

logger = logging.getLogger(__name__)


class TwilioNotConfigured(SignatureError):
    """The channel has no Auth Token: nothing can be verified, so nothing is accepted.

    A subclass of ``SignatureError`` so that a caller that only knows signatures still refuses the request; the
    webhooks catch it first and answer 503, so Twilio's request fails visibly and nothing is stored until an admin
    sets the token.
    """


def verify_twilio_request(*, channel: Channel, request: HttpRequest) -> None:
    """Raise ``SignatureError`` (with the reason) unless ``request`` carries a valid Twilio signature for
    ``channel``; ``TwilioNotConfigured`` when the channel has no ``auth_token`` secret.

    Reads ``request.POST``: a caller that also needs the raw body must read ``request.body`` first.
    """
    secrets = channel.secrets or {}
    if not secrets.get("auth_token"):
        raise TwilioNotConfigured(f"SMS channel {channel.pk} has no Twilio auth_token configured")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    signature_settings = request.headers.get(SIGNATURE_SETTINGS_HEADER, "")
    algorithm = get_signature_algorithm(signature_settings)
    token = _signing_secret(secrets, signature_settings)
    validator = RequestValidator(token)
    for url in _candidate_urls(request):
        if validator.validate(url, request.POST, signature, algorithm):
            return
    logger.warning("channels_app.twilio_signature_invalid", extra={"channel_id": channel.pk, "algorithm": algorithm})
    raise SignatureError(f"{SIGNATURE_HEADER} does not match this request ({algorithm})")


def _signing_secret(secrets: dict, signature_settings: str) -> str:
    if not signature_settings.strip():
        return secrets["auth_token"]
    key_id = ""
    for part in signature_settings.split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "key":
            key_id = value.strip()
    if not key_id:
        raise SignatureError(f"{SIGNATURE_SETTINGS_HEADER} names no key")
    shared_keys = secrets.get("webhook_shared_keys") or {}
    secret = shared_keys.get(key_id) if isinstance(shared_keys, dict) else None
    if not secret or not isinstance(secret, str):
        raise SignatureError(f"unknown webhook signing key {key_id[:100]!r}")
    return secret


def _candidate_urls(request: HttpRequest) -> list[str]:
    """The URL Twilio may have called: the configured public base URL (behind a TLS proxy the request reaches us
    as http on another host), or the URL as Django sees it, which honours the forwarded scheme and host only when
    an admin declared the proxy trusted (``SECURE_PROXY_SSL_HEADER``, ``USE_X_FORWARDED_HOST``)."""
    urls = [settings.PUBLIC_BASE_URL.rstrip("/") + request.get_full_path()]
    try:
        absolute = request.build_absolute_uri()
    except DisallowedHost:
        absolute = ""
    if absolute and absolute not in urls:
        urls.append(absolute)
    return urls
