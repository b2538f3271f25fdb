"""Admins' writes to channel configuration. Secrets are merged key by key and never read back out."""

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction

from channels_app.models import Channel
from customers.identities import normalise_identity, normalise_phone
from helpdesk.errors import Conflict, DomainError
from helpdesk.origins import origin_normalise

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


_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_HOUR = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def chat_channel_settings_clean(*, settings: dict) -> dict:
    """A chat channel's settings, checked and normalised: ``allowed_origins`` as http(s) origins without a path
    (lower case, as browsers send them), ``color`` as #RRGGBB, ``business_hours`` as
    ``{"time_zone": IANA name, "days": {"mon": [["09:00", "17:00"]], ...}}``, ``email_channel_id`` an email channel,
    ``expected_reply_minutes`` a whole number, ``texts`` strings by key. ``DomainError`` naming the field otherwise."""
    settings = dict(settings or {})

    def invalid(message: str):
        return DomainError(message, code="invalid_settings")

    origins = settings.get("allowed_origins", [])
    if not isinstance(origins, list) or not all(isinstance(item, str) for item in origins):
        raise invalid('settings.allowed_origins: a list of origins such as "https://shop.example".')
    cleaned_origins = []
    for item in origins:
        origin = origin_normalise(item)
        if origin is None:
            raise invalid(
                f"settings.allowed_origins: {item!r} is not an origin; give scheme and host (and port), "
                'no path, e.g. "https://shop.example".'
            )
        if origin not in cleaned_origins:
            cleaned_origins.append(origin)
    if "allowed_origins" in settings:
        settings["allowed_origins"] = cleaned_origins
    color = settings.get("color")
    if color not in (None, "") and (not isinstance(color, str) or not _COLOR.match(color)):
        raise invalid('settings.color: a colour as #RRGGBB, e.g. "#0055ff".')
    for key in ("greeting",):
        if not isinstance(settings.get(key, ""), str):
            raise invalid(f"settings.{key}: text.")
    texts = settings.get("texts", {})
    if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
        raise invalid("settings.texts: an object of texts by key.")
    minutes = settings.get("expected_reply_minutes")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0):
        raise invalid("settings.expected_reply_minutes: a whole number of minutes.")
    if not isinstance(settings.get("pre_chat_form", False), bool):
        raise invalid("settings.pre_chat_form: true or false.")
    hours = settings.get("business_hours")
    if hours not in (None, {}):
        _business_hours_check(hours, invalid)
    email_channel_id = settings.get("email_channel_id")
    if email_channel_id not in (None, ""):
        is_email_channel = (
            not isinstance(email_channel_id, bool)
            and isinstance(email_channel_id, int)
            and Channel.objects.filter(pk=email_channel_id, kind=Channel.Kind.EMAIL).exists()
        )
        if not is_email_channel:
            raise invalid("settings.email_channel_id: the id of an email channel.")
    return settings


def _business_hours_check(hours, invalid) -> None:
    if not isinstance(hours, dict) or not isinstance(hours.get("days", {}), dict):
        raise invalid('settings.business_hours: {"time_zone": "Europe/Paris", "days": {"mon": [["09:00", "17:00"]]}}.')
    try:
        ZoneInfo(hours.get("time_zone") or "")
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise invalid("settings.business_hours.time_zone: an IANA time zone, e.g. Europe/Paris.") from exc
    for day, ranges in hours.get("days", {}).items():
        if day not in _DAYS:
            raise invalid(f"settings.business_hours.days: {day!r} is not one of {', '.join(_DAYS)}.")
        if not isinstance(ranges, list):
            raise invalid(f"settings.business_hours.days.{day}: a list of [start, end] pairs.")
        for pair in ranges:
            is_pair = (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(value, str) and _HOUR.match(value) for value in pair)
            )
            if not is_pair or pair[0] >= pair[1]:
                raise invalid(
                    f'settings.business_hours.days.{day}: ranges like ["09:00", "17:00"], the start before the end.'
                )


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
    if kind == Channel.Kind.CHAT:
        config["settings"] = chat_channel_settings_clean(settings=config.get("settings") or {})
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
    if channel.kind == Channel.Kind.CHAT and "settings" in config:
        config["settings"] = chat_channel_settings_clean(settings=config["settings"])
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
