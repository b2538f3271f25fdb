"""Pages the desk serves itself for chat (the widget's API lives in ``chat.api``)."""
