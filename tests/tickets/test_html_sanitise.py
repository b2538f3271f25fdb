"""Message HTML as stored for display: nothing runs, nothing loads from elsewhere, cid: images point at our files."""

import base64
from email.message import EmailMessage

import pytest

from channels_app.services.mailbox_import import email_import
from tests.factories import ChannelFactory
from tickets.html import MAX_DATA_IMAGE_CHARS, html_inline_images, sanitise_html
from tickets.models import Message
from tickets.services.inline_images import message_inline_images_link

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("<p>Hi<script>alert(1)</script></p>", "<p>Hi</p>"),
        ('<img src="x" onerror="alert(1)">', "<img>"),
        ('<p onclick="steal()" onmouseover="x()">text</p>', "<p>text</p>"),
        ('<base href="https://evil.example/"><p>a</p>', "<p>a</p>"),
        ('<iframe src="https://evil.example/">inside</iframe>after', "after"),
        ('<form action="https://evil.example/"><input name="password">Log in</form>', "Log in"),
        ('<meta http-equiv="refresh" content="0;url=https://evil.example/">x', "x"),
        ('<p style="width: expression(alert(1)); background: url(https://t.example/p.gif)">p</p>', "<p>p</p>"),
        ("<style>body { background: url(https://t.example/p.gif) }</style>x", "x"),
        ('<link rel="stylesheet" href="https://t.example/x.css">x', "x"),
        (
            '<table background="https://t.example/bg.gif"><tr><td>c</td></tr></table>',
            "<table><tbody><tr><td>c</td></tr></tbody></table>",
        ),
        ('<svg onload="alert(1)"><image href="https://t.example/p.gif"/></svg>x', "x"),
        ("<object data='x.swf'></object><embed src='x.swf'>x", "x"),
    ],
)
def test_active_and_loading_content_is_removed(dirty, clean):
    assert sanitise_html(dirty) == clean


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "java&#x09;script:alert(1)",
        "&#106;avascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "/api/v1/tickets",
        "cid:part1",
    ],
)
def test_links_to_anything_but_web_mail_and_phone_lose_their_href(href):
    cleaned = sanitise_html(f'<a href="{href}">click</a>')

    assert "href" not in cleaned
    assert ">click</a>" in cleaned


def test_kept_links_open_in_a_new_tab_without_opener_or_referrer():
    cleaned = sanitise_html('<a href="https://shop.example/order/1" target="_self" rel="opener">order</a>')

    assert cleaned == (
        '<a href="https://shop.example/order/1" target="_blank" rel="noopener noreferrer nofollow">order</a>'
    )


@pytest.mark.parametrize("scheme", ["http", "https", "HTTPS", " https"])
def test_remote_images_keep_their_url_but_do_not_load(scheme):
    cleaned = sanitise_html(f'<img src="{scheme}://t.example/open.gif?u=42&amp;m=7" width="1" height="1">')

    assert cleaned == f'<img width="1" height="1" data-remote-src="{scheme}://t.example/open.gif?u=42&amp;m=7">'


def test_srcset_does_not_load_either():
    cleaned = sanitise_html('<img src="https://t.example/a.png" srcset="https://t.example/a2.png 2x" alt="A">')

    assert " src=" not in cleaned and " srcset=" not in cleaned
    assert 'data-remote-src="https://t.example/a.png"' in cleaned
    assert 'data-remote-srcset="https://t.example/a2.png 2x"' in cleaned
    assert 'alt="A"' in cleaned


def test_small_raster_data_images_are_kept_svg_and_large_ones_are_not():
    small = "data:image/png;base64," + base64.b64encode(PNG).decode()
    large = "data:image/png;base64," + "A" * MAX_DATA_IMAGE_CHARS
    svg = "data:image/svg+xml;base64," + base64.b64encode(b"<svg onload='alert(1)'/>").decode()

    assert sanitise_html(f'<img src="{small}">') == f'<img src="{small}">'
    assert sanitise_html(f'<img src="{large}">') == "<img>"
    assert sanitise_html(f'<img src="{svg}">') == "<img>"
    assert sanitise_html('<img src="data:text/html,<script>alert(1)</script>">') == "<img>"


def test_images_from_our_origin_are_dropped_even_attachment_urls():
    # A sender could otherwise show another ticket's attachment in their message, as if it were theirs.
    assert sanitise_html('<img src="/api/v1/attachments/12">') == "<img>"
    assert sanitise_html('<img src="/logout">') == "<img>"
    assert sanitise_html('<img src="//t.example/p.gif">') == "<img>"


def test_a_remote_url_planted_in_data_attributes_must_be_a_web_url():
    cleaned = sanitise_html('<img data-remote-src="javascript:alert(1)" data-cid="x" data-other="y">')

    assert cleaned == '<img data-cid="x">'


def test_sanitising_stored_html_again_changes_nothing():
    once = sanitise_html(
        '<p>Hi <b>there</b></p><img src="https://t.example/p.gif" srcset="https://t.example/p2.gif 2x">'
        '<img src="cid:logo@x"><a href="mailto:ann@example.com">Ann</a>'
    )

    assert sanitise_html(once) == once
    assert 'data-remote-src="https://t.example/p.gif"' in once and 'src="cid:logo@x"' in once


@pytest.mark.parametrize("reference", ["cid:Logo.PNG@01D9", "cid:%3Clogo.png@01d9%3E", "cid:logo.png%4001D9"])
def test_cid_images_point_at_the_attachment_whatever_the_spelling(reference):
    html = sanitise_html(f'<p>Hi</p><img src="{reference}" alt="Logo" width="80">')

    inlined = html_inline_images(html, {"<logo.png@01D9>": "/api/v1/attachments/7"})

    assert inlined == '<p>Hi</p><img src="/api/v1/attachments/7" alt="Logo" width="80">'


def test_unknown_cid_becomes_a_placeholder_that_loads_nothing():
    html = sanitise_html('<img src="cid:missing@x" alt="Photo">')

    inlined = html_inline_images(html, {"other@x": "/api/v1/attachments/7"})

    assert inlined == '<img alt="Photo" data-cid="missing@x">'


def test_inlining_escapes_the_url_and_leaves_other_images_alone():
    html = sanitise_html('<img src="https://t.example/p.gif"><img src="cid:a@x">')

    inlined = html_inline_images(html, {"a@x": '/x?a=1&b="2"'})

    assert inlined == '<img data-remote-src="https://t.example/p.gif"><img src="/x?a=1&amp;b=&quot;2&quot;">'


def inline_image_email(*, message_id: str, content_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.com>"
    message["To"] = "support@desk.example"
    message["Subject"] = "Screenshot"
    message["Message-ID"] = message_id
    message.set_content("See the screenshot.")
    message.add_alternative(
        f'<p>See the screenshot.</p><img src="cid:{content_id}" alt="shot">'
        '<img src="https://tracker.example/open.gif?id=9" width="1" height="1">',
        subtype="html",
    )
    message.get_payload()[1].add_related(PNG, "image", "png", cid=f"<{content_id}>", filename="shot.png")
    return message.as_bytes()


@pytest.mark.django_db
def test_imported_email_shows_its_inline_image_from_our_attachment_and_no_tracking_pixel():
    channel = ChannelFactory(kind="email")
    outcome = email_import(
        channel=channel, raw=inline_image_email(message_id="<shot@mail.example>", content_id="Shot.1@Mail")
    )
    assert outcome.status == "ingested"
    message = Message.objects.get(channel=channel, provider_id="<shot@mail.example>")

    attachment = message.attachments.get()
    assert attachment.content_id == "Shot.1@Mail"
    assert message.html.strip() == (
        f'<p>See the screenshot.</p><img src="/api/v1/attachments/{attachment.pk}" alt="shot">'
        '<img width="1" height="1" data-remote-src="https://tracker.example/open.gif?id=9">'
    )


@pytest.mark.django_db
def test_linking_inline_images_costs_no_query_without_cid(django_assert_num_queries):
    channel = ChannelFactory(kind="email")
    message = Message(channel=channel, html='<img data-remote-src="https://t.example/p.gif">')

    with django_assert_num_queries(0):
        message_inline_images_link(message=message)
