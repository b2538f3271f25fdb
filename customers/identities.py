"""Normalising identity values, so that the same person is recognised however a channel wrote them.

One phone parser for every channel (``normalise_phone``): the API channel, the SMS webhooks, the customer API and
the console read a number the same way, so a value one of them refuses is refused by all.
"""

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from customers.models import CustomerIdentity

MAX_VALUE_LENGTH = 320

# Digits (ASCII) with the separators people and carriers write. phonenumbers alone reads more as a number: letters
# (a vanity number "1-800-FLOWERS", an alphanumeric sender id), another channel's address ("whatsapp:+1...", which
# would land on the SMS customer of the same number), other scripts' digits.
_PHONE_CHARACTERS = re.compile(r"\+?[0-9 ().\-]+", re.ASCII)


def is_phone_shaped(value: str) -> bool:
    """Digits and the usual separators only (what ``normalise_phone`` accepts before phonenumbers reads it)."""
    return isinstance(value, str) and bool(_PHONE_CHARACTERS.fullmatch(value.strip()))


def normalise_email(value: str) -> str:
    address = value.strip().strip("<>").strip()
    try:
        validate_email(address)
    except ValidationError as exc:
        raise ValueError("not a valid email address") from exc
    local, _, domain = address.rpartition("@")
    # Domains are case-insensitive; local parts are in theory not, but every mail system people use treats
    # them so, and matching "Ann@x" to "ann@x" is what recognising a customer needs.
    return f"{local.lower()}@{domain.lower()}"


def normalise_phone(value: str, *, region: str | None = None) -> str:
    """``value`` as E.164, read in ``region`` when it has no country code; ``ValueError`` with a reason when it is
    not a person's phone number."""
    if not is_phone_shaped(value):
        raise ValueError("not a phone number")
    region = region or settings.HELPDESK["DEFAULT_PHONE_REGION"]
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_identity(kind: str, value: str, *, phone_region: str | None = None) -> str:
    """The stored form of ``value`` for identity ``kind``; ValueError with a reason when it is not valid."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("empty identity value")
    if kind == CustomerIdentity.Kind.EMAIL:
        normalised = normalise_email(value)
    elif kind == CustomerIdentity.Kind.PHONE:
        normalised = normalise_phone(value, region=phone_region)
    elif kind in (CustomerIdentity.Kind.CHAT_VISITOR, CustomerIdentity.Kind.EXTERNAL):
        normalised = value.strip()
    else:
        raise ValueError(f"unknown identity kind {kind!r}")
    if len(normalised) > MAX_VALUE_LENGTH:
        raise ValueError("identity value too long")
    return normalised
