"""Twilio's request signature (``X-Twilio-Signature``) on the inbound SMS webhook and in
``verify_twilio_request`` itself: Auth Token (HMAC-SHA1) and SharedKey (HMAC-SHA256) modes, the public URL behind
a TLS proxy, and a channel without a token. Every signature is computed by the ``twilio`` package.
"""

import pytest
from django.test import RequestFactory
from twilio.request_validator import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER

from channels_app.adapters.base import SignatureError
from channels_app.adapters.registry import adapter_for
from channels_app.models import InboundEvent
from channels_app.providers.twilio.signature import TwilioNotConfigured, verify_twilio_request
from tests.channels_app.sms_fixtures import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    TEST_SERVER,
    inbound_path,
    post_twilio,
    signature_for,
    sms_channel_create,
    twilio_payload,
)

pytestmark = pytest.mark.django_db

SHARED_KEY_ID = "webhooks_sharedkey_0001"
SHARED_KEY_SECRET = "shared-key-secret-for-tests"


@pytest.fixture
def sms_channel(db):
    return sms_channel_create()


def test_a_validly_signed_message_is_accepted_and_stored(client, sms_channel):
    response = post_twilio(client, inbound_path(sms_channel), twilio_payload())

    assert response.status_code == 200
    assert InboundEvent.objects.filter(channel=sms_channel).count() == 1


@pytest.mark.parametrize(
    "case",
    ["missing signature", "wrong token", "tampered parameter", "signed for another URL", "signed for another channel"],
)
def test_a_request_without_a_valid_signature_is_refused_and_nothing_is_stored(client, sms_channel, case):
    path = inbound_path(sms_channel)
    params = twilio_payload()
    other = sms_channel_create(address="+14155550198")
    kwargs = {
        "missing signature": {"token": None},
        "wrong token": {"token": "not-the-auth-token"},
        "tampered parameter": {"signed_params": twilio_payload(Body="Something else")},
        "signed for another URL": {"signed_url": TEST_SERVER + "/inbound/sms/twilio/elsewhere/"},
        "signed for another channel": {"signed_url": TEST_SERVER + inbound_path(other)},
    }[case]

    response = post_twilio(client, path, params, **kwargs)

    assert response.status_code == 403
    assert response.json() == {"detail": "The request signature is not valid.", "code": "invalid_signature"}
    assert InboundEvent.objects.count() == 0


def test_an_added_parameter_breaks_the_signature(client, sms_channel):
    signed = twilio_payload()
    posted = {**signed, "Injected": "1"}

    response = post_twilio(client, inbound_path(sms_channel), posted, signed_params=signed)

    assert response.status_code == 403
    assert InboundEvent.objects.count() == 0


def test_behind_a_tls_proxy_the_public_base_url_is_what_twilio_signed(client, sms_channel, settings):
    # Twilio called https://desk.example/...; the proxy forwarded it to us as http://testserver/...
    settings.PUBLIC_BASE_URL = "https://desk.example"
    path = inbound_path(sms_channel)

    response = post_twilio(client, path, twilio_payload(), signed_url="https://desk.example" + path)

    assert response.status_code == 200
    assert InboundEvent.objects.count() == 1


def test_forwarded_headers_count_only_when_the_proxy_is_trusted(client, sms_channel, settings):
    settings.PUBLIC_BASE_URL = "https://desk.example"
    settings.ALLOWED_HOSTS = ["testserver", "texts.example"]
    path = inbound_path(sms_channel)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "texts.example"}
    signed_url = "https://texts.example" + path

    untrusted = post_twilio(client, path, twilio_payload(), signed_url=signed_url, extra_headers=forwarded)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    trusted = post_twilio(client, path, twilio_payload(), signed_url=signed_url, extra_headers=forwarded)

    assert (untrusted.status_code, trusted.status_code) == (403, 200)
    assert InboundEvent.objects.count() == 1


def test_the_default_port_in_the_signed_url_is_accepted(client, sms_channel, settings):
    settings.PUBLIC_BASE_URL = "https://desk.example"
    path = inbound_path(sms_channel)

    response = post_twilio(client, path, twilio_payload(), signed_url="https://desk.example:443" + path)

    assert response.status_code == 200


def test_shared_key_mode_signs_with_the_named_key_and_sha256(client, db):
    channel = sms_channel_create(
        secrets={
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "webhook_shared_keys": {SHARED_KEY_ID: SHARED_KEY_SECRET},
        }
    )

    response = post_twilio(
        client, inbound_path(channel), twilio_payload(), token=SHARED_KEY_SECRET, shared_key_id=SHARED_KEY_ID
    )

    assert response.status_code == 200
    assert InboundEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("token", "key_id"),
    [
        (SHARED_KEY_SECRET, "webhooks_sharedkey_unknown"),  # a key this channel does not have
        (AUTH_TOKEN, SHARED_KEY_ID),  # the settings header says SharedKey, but it was signed with the Auth Token
    ],
    ids=["unknown key id", "auth token under a shared key header"],
)
def test_shared_key_mode_refuses_what_the_named_key_did_not_sign(client, db, token, key_id):
    channel = sms_channel_create(
        secrets={
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "webhook_shared_keys": {SHARED_KEY_ID: SHARED_KEY_SECRET},
        }
    )

    response = post_twilio(client, inbound_path(channel), twilio_payload(), token=token, shared_key_id=key_id)

    assert response.status_code == 403
    assert InboundEvent.objects.count() == 0


@pytest.mark.parametrize("secrets", [{}, {"account_sid": ACCOUNT_SID}, {"account_sid": ACCOUNT_SID, "auth_token": ""}])
def test_a_channel_without_an_auth_token_answers_503_and_stores_nothing(client, db, secrets):
    channel = sms_channel_create(secrets=secrets)

    response = post_twilio(client, inbound_path(channel), twilio_payload(), token="anything")

    assert response.status_code == 503
    assert response.json()["code"] == "not_configured"
    assert InboundEvent.objects.count() == 0


# verify_twilio_request directly (the status callback webhook uses it through the adapter too).


def signed_request(path: str, params: dict, *, token: str = AUTH_TOKEN, headers: dict | None = None):
    headers = {SIGNATURE_HEADER: signature_for(TEST_SERVER + path, params, token=token), **(headers or {})}
    return RequestFactory().post(path, data=params, headers=headers)


def test_the_adapter_verifies_through_twilio_signature(sms_channel):
    path = "/inbound/sms/twilio/status-test/"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}

    adapter_for(sms_channel).verify(channel=sms_channel, request=signed_request(path, params))
    with pytest.raises(SignatureError):
        adapter_for(sms_channel).verify(channel=sms_channel, request=signed_request(path, params, token="wrong"))


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({SIGNATURE_HEADER: ""}, "missing X-Twilio-Signature header"),
        ({SIGNATURE_SETTINGS_HEADER: "algorithm=HMAC_SHA256"}, "X-Twilio-Webhooks-Signature-Settings names no key"),
        ({SIGNATURE_SETTINGS_HEADER: "key=nope,algorithm=HMAC_SHA256"}, "unknown webhook signing key 'nope'"),
        (
            {SIGNATURE_SETTINGS_HEADER: f"key={SHARED_KEY_ID},algorithm=HMAC_MD5"},
            "X-Twilio-Signature does not match this request (HMAC_MD5)",
        ),
    ],
    ids=["empty signature", "settings without key", "unknown key", "unsupported algorithm"],
)
def test_verification_failures_say_why(db, headers, reason):
    channel = sms_channel_create(
        secrets={"auth_token": AUTH_TOKEN, "webhook_shared_keys": {SHARED_KEY_ID: SHARED_KEY_SECRET}}
    )
    request = signed_request("/x/", {"MessageSid": "SM1"}, headers=headers)

    with pytest.raises(SignatureError) as raised:
        verify_twilio_request(channel=channel, request=request)

    assert str(raised.value) == reason
    assert not isinstance(raised.value, TwilioNotConfigured)


def test_an_unconfigured_channel_raises_its_own_signature_error(db):
    channel = sms_channel_create(secrets={})

    with pytest.raises(TwilioNotConfigured) as raised:
        verify_twilio_request(channel=channel, request=signed_request("/x/", {"MessageSid": "SM1"}))

    assert isinstance(raised.value, SignatureError)
