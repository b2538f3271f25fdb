"""Amazon SNS message signatures, checked as AWS documents them ("Verifying the signatures of Amazon SNS
messages"): anymail does not verify them, and without it an SES post's ``Timestamp`` and content are as forgeable
as its body by whoever holds the basic-auth secret.

The signature covers the message's fields in a fixed order (``Key\\nValue\\n`` each), signed with the key of a
certificate AWS serves from ``SigningCertURL``: RSA PKCS#1 v1.5 with SHA-1 (``SignatureVersion`` 1) or SHA-256
(2). The certificate is fetched only from an ``https://sns.<region>.amazonaws.com/...pem`` URL, once per URL per
process. A signed message is then refused when its ``Timestamp`` is further from our clock than the tolerance:
SNS retries a notification with its original ``Timestamp``, for an hour at most, so a post older than that is a
replay. A replay within the tolerance is the same signed content, which the desk stores once (keyed on the SES
message), so no token store is needed as for Mailgun.
"""

import base64
import binascii
import re
import threading
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CERTIFICATE_TIMEOUT_SECONDS = 5
MAX_CERTIFICATE_BYTES = 16 * 1024
_CERTIFICATE_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
_CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_KEYS,
    "UnsubscribeConfirmation": _CONFIRMATION_KEYS,
}
_OPTIONAL_KEYS = {"Subject"}  # a Notification published without a subject leaves it out of the signed text

_certificates: dict[str, rsa.RSAPublicKey] = {}
_certificates_lock = threading.Lock()


class SnsSignatureError(Exception):
    """The message is not signed by SNS (a bad or missing signature, a certificate not from AWS, a stale one)."""


class SnsCertificateUnavailable(Exception):
    """AWS's signing certificate could not be fetched now: retryable (SNS retries on a 5xx)."""


def sns_certificate_transport() -> httpx.BaseTransport | None:
    """``None``: the network. Tests replace this function to put an ``httpx.MockTransport`` in AWS's place."""
    return None


def sns_string_to_sign(message: dict) -> bytes:
    keys = _SIGNED_KEYS.get(message.get("Type"))
    if keys is None:
        raise SnsSignatureError(f"SNS message type {message.get('Type')!r} is not one SNS signs.")
    parts = []
    for key in keys:
        if key in _OPTIONAL_KEYS and key not in message:
            continue
        value = message.get(key)
        if not isinstance(value, str):
            raise SnsSignatureError(f"The SNS message has no {key}.")
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode()


def sns_signature_verify(message: dict, *, tolerance_seconds: int, now: datetime | None = None) -> None:
    """Raise ``SnsSignatureError`` unless ``message`` is signed by SNS and its ``Timestamp`` is within
    ``tolerance_seconds`` of ``now``; ``SnsCertificateUnavailable`` when AWS's certificate cannot be fetched."""
    algorithm = _HASHES.get(message.get("SignatureVersion"))
    if algorithm is None:
        raise SnsSignatureError("The SNS message has no SignatureVersion 1 or 2.")
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsSignatureError("The SNS message's Signature is not base64.") from exc
    if not signature:
        raise SnsSignatureError("The SNS message is not signed.")
    public_key = _public_key(_certificate_url(message.get("SigningCertURL")))
    try:
        public_key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SnsSignatureError("The SNS message's signature does not match its content.") from exc
    _check_age(message.get("Timestamp"), tolerance_seconds=tolerance_seconds, now=now or datetime.now(UTC))


def _certificate_url(value) -> str:
    url = urlsplit(str(value or ""))
    if (
        url.scheme != "https"
        or not _CERTIFICATE_HOST.match(url.hostname or "")
        or url.port is not None
        or url.username is not None
        or not url.path.endswith(".pem")
    ):
        raise SnsSignatureError("The SNS message's SigningCertURL is not an SNS certificate URL of AWS.")
    return url.geturl()


def _public_key(url: str) -> rsa.RSAPublicKey:
    with _certificates_lock:
        cached = _certificates.get(url)
    if cached is not None:
        return cached
    try:
        with httpx.Client(
            transport=sns_certificate_transport(), timeout=CERTIFICATE_TIMEOUT_SECONDS, follow_redirects=False
        ) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise SnsCertificateUnavailable(
            f"AWS's SNS signing certificate could not be fetched ({type(exc).__name__})."
        ) from exc
    if 400 <= response.status_code < 500:
        # No such certificate at AWS: a message naming it was never signed by SNS (and never will be).
        raise SnsSignatureError(f"AWS has no SNS signing certificate there (it answered {response.status_code}).")
    if response.status_code != 200 or len(response.content) > MAX_CERTIFICATE_BYTES:
        raise SnsCertificateUnavailable(f"AWS answered {response.status_code} for the SNS signing certificate.")
    try:
        public_key = x509.load_pem_x509_certificate(response.content).public_key()
    except ValueError as exc:
        raise SnsSignatureError("The SNS signing certificate is not a PEM certificate.") from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SnsSignatureError("The SNS signing certificate has no RSA key.")
    with _certificates_lock:
        _certificates[url] = public_key
    return public_key


def _check_age(value, *, tolerance_seconds: int, now: datetime) -> None:
    try:
        timestamp = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise SnsSignatureError("The SNS message's Timestamp is not a time.") from exc
    if timestamp.tzinfo is None:
        raise SnsSignatureError("The SNS message's Timestamp has no time zone.")
    if abs((now - timestamp).total_seconds()) > tolerance_seconds:
        raise SnsSignatureError(
            f"The SNS message was signed at {value}, more than {tolerance_seconds} seconds from now: a replay."
        )


def sns_certificates_forget() -> None:
    """Drop the fetched certificates (tests; a process otherwise keeps them, as AWS rotates by URL)."""
    with _certificates_lock:
        _certificates.clear()
