"""Signing SNS messages as AWS does, with a key and certificate of the tests' own (AWS's private key is not ours to
use), and AWS's certificate host played by an ``httpx.MockTransport``.

The text to sign is written here from AWS's documentation ("Verifying the signatures of Amazon SNS messages"),
not taken from the code under test, so a mistake in the desk's version fails the tests instead of agreeing
with itself."""

import base64
from datetime import UTC, datetime, timedelta

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-tests.pem"

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
_NOW = datetime.now(UTC)
CERT_PEM = (
    x509.CertificateBuilder()
    .subject_name(_NAME)
    .issuer_name(_NAME)
    .public_key(_KEY.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(_NOW - timedelta(days=1))
    .not_valid_after(_NOW + timedelta(days=30))
    .sign(_KEY, hashes.SHA256())
    .public_bytes(serialization.Encoding.PEM)
)

# AWS's lists, in the order it signs them.
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def sns_signed(notification: dict, *, version: str = "1", timestamp: datetime | None = None) -> dict:
    """``notification`` with a fresh (or the given) Timestamp, signed with the tests' key under ``CERT_URL``."""
    signed = dict(notification)
    stamp = timestamp or datetime.now(UTC)
    signed["Timestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    signed["SignatureVersion"] = version
    signed["SigningCertURL"] = CERT_URL
    fields = NOTIFICATION_FIELDS if signed.get("Type") == "Notification" else CONFIRMATION_FIELDS
    text = "".join(f"{name}\n{signed[name]}\n" for name in fields if isinstance(signed.get(name), str))
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 (SNS SignatureVersion 1 is SHA-1)
    signed["Signature"] = base64.b64encode(_KEY.sign(text.encode(), padding.PKCS1v15(), algorithm)).decode()
    return signed


def aws_certificate_host() -> httpx.MockTransport:
    """AWS's certificate host: the tests' certificate at ``CERT_URL``, 404 for anything else."""

    def answer(request: httpx.Request) -> httpx.Response:
        if str(request.url) == CERT_URL:
            return httpx.Response(200, content=CERT_PEM)
        return httpx.Response(404)

    return httpx.MockTransport(answer)
