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
        from django.db.models.signals import post_delete, post_save

        from channels_app.models import Channel
        from chat.channel_cache import chat_channel_cache_clear
        from chat.cors import cors_request_allowed
        from chat.publish import ChatVisitorAudience
        from realtime.audiences import audience_register

        # A channel saved or deleted here is read again at once by this process (the others within seconds).
        post_save.connect(chat_channel_cache_clear, sender=Channel, dispatch_uid="chat.channel_cache.saved")
        post_delete.connect(chat_channel_cache_clear, sender=Channel, dispatch_uid="chat.channel_cache.deleted")

        # The CORS middleware asks per request which origins the widget API answers (each chat channel's own).
        check_request_enabled.connect(cors_request_allowed, dispatch_uid="chat.cors_request_allowed")

        # Visitors follow their conversation over realtime's websockets: what they receive is chat's to say.
        audience_register(ChatVisitorAudience())
