"""Normalising identity values, so that the same person is recognised however a channel wrote them."""

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from customers.models import CustomerIdentity

MAX_VALUE_LENGTH = 320


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
