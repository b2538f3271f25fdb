"""Finds the adapter for a channel by its kind and provider.

A provider is one folder whose adapter module calls ``register`` when imported; ``PROVIDERS`` lists those modules,
and ``providers_load`` (run by ``ChannelsAppConfig.ready``) imports them. Adding a provider is its folder and one
line in ``PROVIDERS``.
"""

from importlib import import_module

from channels_app.adapters.base import TEXT_ONLY, Capabilities, ChannelAdapter
from channels_app.models import Channel

PROVIDERS = (
    "channels_app.providers.api.adapter",
    "channels_app.providers.email.adapter",
    "channels_app.providers.twilio.adapter",
    "chat.adapter",
)

_adapters: dict[tuple[str, str], ChannelAdapter] = {}
_default_provider: dict[str, str] = {}


class AdapterNotFound(LookupError):
    pass


def register(adapter_class: type, *, default: bool = False) -> type:
    adapter = adapter_class()
    _adapters[(adapter.kind, adapter.provider)] = adapter
    if default or adapter.kind not in _default_provider:
        _default_provider[adapter.kind] = adapter.provider
    return adapter_class


def providers_load() -> None:
    """Import every provider's adapter module, which registers it. By name: the registry is the door the core
    uses, and importing the providers themselves would make every user of the door depend on all of them."""
    for module in PROVIDERS:
        import_module(module)


def adapter_for(channel: Channel) -> ChannelAdapter:
    provider = channel.provider or _default_provider.get(channel.kind, "")
    try:
        return _adapters[(channel.kind, provider)]
    except KeyError:
        raise AdapterNotFound(
            f"No adapter is installed for {channel.kind} channels with provider {provider or '(default)'!r}."
        ) from None


def has_adapter(channel: Channel) -> bool:
    try:
        adapter_for(channel)
    except AdapterNotFound:
        return False
    return True


def capabilities_for(channel: Channel) -> Capabilities:
    """What ``channel`` can do beyond text; a channel with no installed adapter can do nothing more."""
    try:
        return adapter_for(channel).capabilities
    except AdapterNotFound:
        return TEXT_ONLY


def registered() -> list[tuple[str, str]]:
    return sorted(_adapters)
