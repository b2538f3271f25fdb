"""Admins' writes to channel configuration. Secrets are merged key by key and never read back out."""

import re

from django.db import IntegrityError, transaction

from channels_app.models import Channel
from customers.identities import normalise_identity, normalise_phone
from helpdesk.errors import Conflict, DomainError

_ADDRESS_KIND = {Channel.Kind.EMAIL: "email", Channel.Kind.SMS: "phone"}
CONFIG_FIELDS = (
    "name",
    "provider",
    "address",
    "settings",
    "default_team",
    "continue_open_ticket",
    "is_active",
)


def _normalised_address(kind: str, address: str) -> str:
    if not address:
        return ""
    identity_kind = _ADDRESS_KIND.get(kind)
    if identity_kind is None:
        return address.strip()
    try:
        return normalise_identity(identity_kind, address)
    except ValueError as exc:
        raise DomainError(f"address: {exc}", code="invalid_address") from exc


_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


def sms_channel_config_clean(*, address: str, settings: dict) -> tuple[str, dict]:
    """An SMS channel's sender and settings, normalised: ``address`` as E.164 (read in the channel's
    ``phone_region``), or blank when it sends through ``messaging_service_sid``; further ``numbers`` as E.164; a
    positive ``send_rate_per_second``. ``DomainError`` naming the field otherwise."""
    settings = dict(settings or {})
    region = settings.get("phone_region") or None
    if region is not None and (not isinstance(region, str) or not re.fullmatch(r"[A-Za-z]{2}", region)):
        raise DomainError("settings.phone_region: a two-letter country code, e.g. US or GB.", code="invalid_settings")
    service_sid = settings.get("messaging_service_sid", "")
    if service_sid and (not isinstance(service_sid, str) or not _MESSAGING_SERVICE_SID.match(service_sid)):
        raise DomainError(
            "settings.messaging_service_sid: a Twilio Messaging Service SID (MG followed by 32 hex digits).",
            code="invalid_settings",
        )
    address = (address or "").strip()
    if address:
        address = _sms_number(address, region=region, field="address")
    elif not service_sid:
        raise DomainError(
            "An SMS channel sends from its number (address, E.164 such as +14155550100) or a Messaging Service "
            "(settings.messaging_service_sid); give one.",
            code="sms_sender_missing",
        )
    numbers = settings.get("numbers")
    if numbers is not None:
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise DomainError("settings.numbers: a list of phone numbers.", code="invalid_settings")
        settings["numbers"] = [_sms_number(n, region=region, field="settings.numbers") for n in numbers]
    rate = settings.get("send_rate_per_second")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0):
        raise DomainError("settings.send_rate_per_second: a number above 0.", code="invalid_settings")
    return address, settings


def _sms_number(value: str, *, region: str | None, field: str) -> str:
    try:
        return normalise_phone(value, region=region)
    except ValueError as exc:
        # The same words as any other address error; the API's clients match on them.
        raise DomainError(f"{field}: {exc}", code="invalid_address") from exc


def _merged_secrets(current: dict, changes: dict | None) -> dict:
    merged = dict(current or {})
    for key, value in (changes or {}).items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged


@transaction.atomic
def channel_create(*, kind: str, name: str, secrets: dict | None = None, **config) -> Channel:
    if kind not in Channel.Kind.values:
        raise DomainError(f"Unknown channel kind {kind!r}.")
    if kind == Channel.Kind.SMS:
        config["address"], config["settings"] = sms_channel_config_clean(
            address=config.get("address", ""), settings=config.get("settings") or {}
        )
    else:
        config["address"] = _normalised_address(kind, config.get("address", ""))
    if "continue_open_ticket" not in config:
        # Email threads by its headers; the other channels let the conversation follow the customer.
        config["continue_open_ticket"] = kind != Channel.Kind.EMAIL
    channel = Channel(kind=kind, name=name, **config)
    channel.secrets = _merged_secrets({}, secrets)
    try:
        with transaction.atomic():
            channel.save()
    except IntegrityError as exc:
        raise Conflict("Another channel of this kind already has this address.", code="address_taken") from exc
    return channel


@transaction.atomic
def channel_update(*, channel: Channel, secrets: dict | None = None, **config) -> Channel:
    channel = Channel.objects.select_for_update().get(pk=channel.pk)
    if channel.kind == Channel.Kind.SMS and ("address" in config or "settings" in config):
        config["address"], config["settings"] = sms_channel_config_clean(
            address=config.get("address", channel.address), settings=config.get("settings", channel.settings)
        )
    elif "address" in config:
        config["address"] = _normalised_address(channel.kind, config["address"])
    for field, value in config.items():
        if field not in CONFIG_FIELDS:
            raise DomainError(f"{field} cannot be changed.")
        setattr(channel, field, value)
    if secrets is not None:
        channel.secrets = _merged_secrets(channel.secrets, secrets)
    try:
        with transaction.atomic():
            channel.save()
    except IntegrityError as exc:
        raise Conflict("Another channel of this kind already has this address.", code="address_taken") from exc
    return channel
