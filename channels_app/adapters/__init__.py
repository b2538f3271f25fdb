"""Built-in channel adapters; importing this package registers them."""

from channels_app.providers.api import adapter as api  # noqa: F401
from channels_app.providers.email import adapter as email  # noqa: F401
from channels_app.providers.twilio import adapter as twilio  # noqa: F401
from chat import adapter as chat  # noqa: F401
