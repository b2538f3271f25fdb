"""The embed snippet shown to admins, and the demo host page (DEBUG only)."""

import pytest
from django.http import Http404
from django.test import RequestFactory

from channels_app.models import Channel
from chat.embed import widget_embed_snippet, widget_script_url
from chat.views.demo import chat_demo


def test_the_embed_snippet_loads_the_widget_from_the_desk_with_the_channels_key(settings):
    settings.PUBLIC_BASE_URL = "https://desk.example"
    channel = Channel(kind=Channel.Kind.CHAT, name="Shop")

    snippet = widget_embed_snippet(channel=channel)

    assert snippet == (
        f'<script src="https://desk.example/static/chat/widget.js" data-channel="{channel.public_key}" defer></script>'
    )


def test_the_demo_page_embeds_the_widget_of_the_key_in_its_url(settings):
    settings.DEBUG = True
    request = RequestFactory().get("/chat/demo/pk_abc/", HTTP_HOST="127.0.0.1:8000")

    response = chat_demo(request, public_key="pk_abc")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<script src="http://127.0.0.1:8000/static/chat/widget.js" data-channel="pk_abc" defer></script>' in html
    assert widget_script_url(base_url="http://127.0.0.1:8000/") == "http://127.0.0.1:8000/static/chat/widget.js"


def test_the_demo_page_escapes_what_the_url_says(settings):
    settings.DEBUG = True
    request = RequestFactory().get("/chat/demo/x/", HTTP_HOST="127.0.0.1:8000")

    html = chat_demo(request, public_key='"><script>alert(1)</script>').content.decode()

    assert "<script>alert(1)</script>" not in html
    assert 'data-channel="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_the_demo_page_does_not_exist_without_debug(settings):
    settings.DEBUG = False
    request = RequestFactory().get("/chat/demo/pk_abc/", HTTP_HOST="127.0.0.1:8000")

    with pytest.raises(Http404):
        chat_demo(request, public_key="pk_abc")
