"""Admins' writes to channel configuration. Secrets are merged key by key and never read back out."""

from django.db import IntegrityError, transaction

from channels_app.models import Channel
from customers.identities import normalise_identity
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
    if "address" in config:
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
