from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Live chat: the embeddable widget, its visitors and their conversations.

    Its own app because the widget (static JavaScript, its REST API for browsers on other sites, visitor tokens and
    identity verification) is a large concern of its own; the messages themselves are the core's tickets and
    messages, and chat channels are ``channels_app`` channels of kind ``chat``.
    """

    name = "chat"
    verbose_name = "Live chat"
