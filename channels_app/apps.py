from django.apps import AppConfig


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    verbose_name = "Channels"

    def ready(self) -> None:
        # Providers register their adapters when imported; importing the package registers the built-in ones.
        from channels_app import adapters  # noqa: F401
