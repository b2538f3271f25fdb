"""A host page for trying the widget locally: a stand-in for a customer's website, only while ``DEBUG`` is on.

It needs no database: the widget fetches its channel's configuration itself. For it to work, the desk's own
origin (``PUBLIC_BASE_URL``) must be in the channel's ``allowed_origins``, as a real shop's origin would be.
"""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static

from chat.embed import widget_script_url


def chat_demo(request: HttpRequest, public_key: str) -> HttpResponse:
    if not settings.DEBUG:
        raise Http404("The chat demo page exists only with DEBUG on.")
    return render(
        request,
        "chat/demo.html",
        {
            "public_key": public_key,
            "widget_src": widget_script_url(base_url=request.build_absolute_uri("/")),
            "stylesheet_href": static("chat/demo.css"),
        },
    )
