from django.apps import AppConfig


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    verbose_name = "Channels"

    def ready(self) -> None:
        from anymail.signals import inbound

        from channels_app.adapters.registry import providers_load
        from channels_app.providers.email.webhooks import email_webhook_receive
        from channels_app.tasks import task_modules_load

        # Imported once the models are loaded: each adapter module registers its adapter, each task module its
        # Celery tasks (the worker finds them here, as every other process does).
        providers_load()
        task_modules_load()

        # anymail's inbound webhook views send this signal; the receiver stores the raw message.
        inbound.connect(email_webhook_receive, dispatch_uid="channels_app.email_webhook_receive")
