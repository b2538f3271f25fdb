"""The built-in channel adapters; importing this module registers them (``ChannelsAppConfig.ready`` does).

Kept out of the package's ``__init__``: every provider imports ``channels_app.adapters.base``, and a package that
imported the providers would make each provider import itself half-initialised."""

from channels_app.providers.api import adapter as api  # noqa: F401
from channels_app.providers.email import adapter as email  # noqa: F401
from channels_app.providers.twilio import adapter as twilio  # noqa: F401
from chat import adapter as chat  # noqa: F401
