"""The snippet an admin pastes into their site to embed a chat channel's widget."""

from django.conf import settings
from django.template.loader import render_to_string

from channels_app.models import Channel


def widget_script_url(*, base_url: str | None = None) -> str:
    """The absolute URL of widget.js on this desk. The widget derives the desk's address from it, so it must be
    the address browsers on the host site reach the desk at (``PUBLIC_BASE_URL`` unless told otherwise).

    The unhashed name on purpose: the snippet is pasted into other sites once and must keep working after every
    deploy (whitenoise serves the unhashed copy too, with a short cache lifetime)."""
    base = (base_url or settings.PUBLIC_BASE_URL).rstrip("/")
    return f"{base}/{settings.STATIC_URL.strip('/')}/chat/widget.js"


def widget_embed_snippet(*, channel: Channel) -> str:
    """The ``<script>`` tag for ``channel`` (HTML-escaped values), to show in the admin next to its settings."""
    return render_to_string(
        "chat/embed_snippet.html", {"widget_src": widget_script_url(), "public_key": channel.public_key}
    ).strip()
