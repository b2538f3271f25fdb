from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Live chat: the embeddable widget, its visitors and their conversations.

    Its own app because the widget (static JavaScript, its REST API for browsers on other sites, visitor tokens and
    identity verification) is a large concern of its own; the messages themselves are the core's tickets and
    messages, and chat channels are ``channels_app`` channels of kind ``chat``.
    """

    name = "chat"
    verbose_name = "Live chat"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from chat.cors import cors_request_allowed

        # The CORS middleware asks per request which origins the widget API answers (each chat channel's own).
        check_request_enabled.connect(cors_request_allowed, dispatch_uid="chat.cors_request_allowed")
