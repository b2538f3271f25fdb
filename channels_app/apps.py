from django.apps import AppConfig


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    verbose_name = "Channels"

    def ready(self) -> None:
        from anymail.signals import inbound

        # Providers register their adapters when imported; this module imports the built-in ones.
        from channels_app.adapters import installed  # noqa: F401
        from channels_app.providers.email.webhooks import email_webhook_receive

        # anymail's inbound webhook views send this signal; the receiver stores the raw message.
        inbound.connect(email_webhook_receive, dispatch_uid="channels_app.email_webhook_receive")
