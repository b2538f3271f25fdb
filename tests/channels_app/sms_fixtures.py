"""Twilio SMS test helpers: a configured channel, the recorded payloads under ``tests/fixtures/twilio/``, and
posting them signed the way Twilio does, with the ``twilio`` package's own ``RequestValidator.compute_signature``.

No pytest fixtures here (an imported fixture shadows itself in the test's arguments): wrap ``sms_channel_create``
in a fixture of your module.
"""

import json
from pathlib import Path
from urllib.parse import urlencode

import redis
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from twilio.request_validator import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, RequestValidator

from channels_app.models import Channel
from channels_app.sms.rate_limit import KEY_PREFIX
from tests.factories import ChannelFactory

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio"

ACCOUNT_SID = "AC00000000000000000000000000000001"
AUTH_TOKEN = "twilio-auth-token-for-tests"
CHANNEL_NUMBER = "+14155550199"
CUSTOMER_PHONE = "+14155550100"
# What the Django test client's requests look like to the view (build_absolute_uri).
TEST_SERVER = "http://testserver"


def twilio_payload(name: str = "sms", **overrides: str) -> dict[str, str]:
    """A recorded payload (``tests/fixtures/twilio/<name>.json``) with fields replaced; ``None`` removes one."""
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    for field, value in overrides.items():
        if value is None:
            payload.pop(field, None)
        else:
            payload[field] = value
    return payload


def sms_channel_create(**overrides) -> Channel:
    values = {
        "kind": Channel.Kind.SMS,
        "provider": "twilio",
        "name": "Texts",
        "address": CHANNEL_NUMBER,
        "settings": {"phone_region": "US"},
        "secrets": {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
    }
    values.update(overrides)
    return ChannelFactory(**values)


def inbound_path(channel: Channel) -> str:
    return reverse("sms_webhooks:twilio-inbound", kwargs={"public_key": channel.public_key})


def signature_for(url: str, params: dict, *, token: str = AUTH_TOKEN, algorithm: str | None = None) -> str:
    return RequestValidator(token).compute_signature(url, params, algorithm)


def post_twilio(
    client: Client,
    path: str,
    params: dict[str, str],
    *,
    token: str | None = AUTH_TOKEN,
    signed_url: str | None = None,
    signed_params: dict | None = None,
    shared_key_id: str | None = None,
    extra_headers: dict | None = None,
):
    """POST ``params`` form-encoded to ``path`` as Twilio would, signed with ``token`` over ``signed_url`` (the
    test server's URL unless given) and ``signed_params`` (``params`` unless given); ``token=None`` sends no
    signature. ``shared_key_id`` signs in SharedKey mode (HMAC-SHA256 and the settings header)."""
    headers = dict(extra_headers or {})
    if token is not None:
        algorithm = "HMAC_SHA256" if shared_key_id else None
        url = signed_url or TEST_SERVER + path
        headers[SIGNATURE_HEADER] = signature_for(
            url, params if signed_params is None else signed_params, token=token, algorithm=algorithm
        )
        if shared_key_id:
            headers[SIGNATURE_SETTINGS_HEADER] = f"key={shared_key_id},algorithm=HMAC_SHA256"
    return client.post(path, data=urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers)


def sms_rate_buckets_clear() -> None:
    """Every sender's send slot free again: the rate buckets live in Redis (or the local cache) across tests."""
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(match=KEY_PREFIX + "*"):
            client.delete(key)
    cache.clear()
