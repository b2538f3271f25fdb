"""Built-in channel adapters; importing this package registers them."""

from channels_app.adapters import api, chat, email, twilio  # noqa: F401
