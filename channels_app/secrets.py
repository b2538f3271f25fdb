"""Encryption at rest for channel secrets (API keys, auth tokens, passwords).

Fernet with the keys in ``SECRETS_ENCRYPTION_KEYS`` (first encrypts, all decrypt, so keys can be rotated), or a
key derived from ``SECRET_KEY`` when none is set.
"""

import base64
import hashlib
import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@cache
def _fernet() -> MultiFernet:
    keys = list(settings.SECRETS_ENCRYPTION_KEYS)
    if not keys:
        digest = hashlib.sha256(("helpdesk-channel-secrets:" + settings.SECRET_KEY).encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_json(value: dict) -> str:
    return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ValueError("channel secrets cannot be decrypted with the configured keys") from exc


class EncryptedJSONField(models.TextField):
    """A dict stored encrypted. It never appears in ``repr`` or in API output; read it with ``channel.secrets``."""

    def from_db_value(self, value, expression, connection):
        return decrypt_json(value) if value else {}

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        return decrypt_json(value) if value else {}

    def get_prep_value(self, value):
        return encrypt_json(value or {})
