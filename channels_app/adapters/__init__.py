"""Built-in channel adapters; importing this package registers them."""

from channels_app.adapters import api, email, twilio  # noqa: F401
