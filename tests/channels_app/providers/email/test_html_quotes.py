"""HTML-only replies: the new text is separated from the quoted history by each client's own markup."""

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from channels_app.providers.email.html_quotes import html_reply
from channels_app.providers.email.parsing import parse_email
from tickets.html import html_to_text

REPLIES = Path(__file__).resolve().parents[3] / "fixtures" / "email_corpus" / "replies"

GMAIL = (
    '<div dir="ltr">Thanks, the replacement arrived today.<div><br></div><div>Best,</div><div>Ann</div></div><br>'
    '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">On Mon, 2 Nov 2026 at 10:00,'
    ' Support &lt;<a href="mailto:support@desk.example">support@desk.example</a>&gt; wrote:<br></div>'
    '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
    'padding-left:1ex"><div dir="ltr">We have shipped a replacement.</div></blockquote></div>\n'
)
OUTLOOK_WEB = (
    '<html><head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
    '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>\n</head>\n'
    '<body dir="ltr">\n<div class="elementToProof" style="font-family: Aptos, Aptos_EmbeddedFont, Calibri, '
    'Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);">\nThe invoice number is 4471.</div>\n'
    '<div id="appendonsend"></div>\n<hr style="display:inline-block;width:98%" tabindex="-1">\n'
    '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">'
    "<b>From:</b> Support &lt;support@desk.example&gt;<br>\n<b>Sent:</b> Monday, November 2, 2026 10:00 AM<br>\n"
    "<b>To:</b> Ann &lt;ann@example.com&gt;<br>\n<b>Subject:</b> Re: Invoice [#42]</font>\n<div>&nbsp;</div>\n"
    "</div>\n<div>\n<div>Which invoice do you mean?</div>\n</div>\n</body>\n</html>\n"
)
OUTLOOK_DESKTOP = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta name=Generator content="Microsoft Word 15 '
    '(filtered medium)"><style><!--\np.MsoNormal {margin:0cm; font-size:11.0pt;}\n--></style></head>'
    '<body lang=EN-GB link="#0563C1" vlink="#954F72"><div class=WordSection1>'
    "<p class=MsoNormal>Yes, please cancel it.<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>"
    "<p class=MsoNormal>Kind regards,<br>Ann Example<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>"
    "<div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
    "<p class=MsoNormal><b><span lang=EN-US>From:</span></b><span lang=EN-US> Support &lt;support@desk.example&gt;"
    " <br><b>Sent:</b> Monday, 2 November 2026 10:00<br><b>To:</b> Ann &lt;ann@example.com&gt;<br>"
    "<b>Subject:</b> Your order [#42]<o:p></o:p></span></p></div></div><p class=MsoNormal><o:p>&nbsp;</o:p></p>"
    "<p class=MsoNormal>Shall we cancel the order?<o:p></o:p></p></div></body></html>"
)
OUTLOOK_2003 = (
    "<div dir=ltr align=left><font face=Arial size=2>Got it, thanks.</font></div><br>"
    "<div class=OutlookMessageHeader lang=en-us dir=ltr align=left><hr tabIndex=-1><font face=Tahoma size=2>"
    "<b>From:</b> Support [mailto:support@desk.example] <br><b>Sent:</b> Monday, November 02, 2026 10:00 AM<br>"
    "<b>To:</b> Ann<br><b>Subject:</b> Your order<br></font><br></div><div></div>"
    "<div><font face=Arial size=2>The order shipped.</font></div>"
)
APPLE_MAIL = (
    '<html aria-label="message body"><head><meta http-equiv="content-type" content="text/html; charset=utf-8">'
    '</head><body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">'
    'It works now, thank you!<div><br></div><div>Ann<br id="lineBreakAtBeginningOfMessage"><div><br>'
    '<blockquote type="cite"><div>On 2 Nov 2026, at 10:00, Support &lt;support@desk.example&gt; wrote:</div>'
    '<br class="Apple-interchange-newline"><div><div>Please restart the router.</div></div></blockquote></div>'
    "<br></div></body></html>"
)
IPHONE = (
    '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body dir="auto">'
    '<div dir="ltr">Sure, Tuesday is fine.</div><div dir="ltr"><br><blockquote type="cite">On 2 Nov 2026, at '
    '10:00, Support &lt;support@desk.example&gt; wrote:<br><br></blockquote></div><blockquote type="cite">'
    '<div dir="ltr"><div>Would Tuesday suit you?</div></div></blockquote></body></html>'
)
THUNDERBIRD = (
    '<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n'
    "  </head>\n  <body>\n    <p>Here is the log you asked for.</p>\n"
    '    <div class="moz-cite-prefix">On 02/11/2026 10:00, Support wrote:<br>\n    </div>\n'
    '    <blockquote type="cite" cite="mid:hd.17.abc@desk.example">\n'
    '      <pre class="moz-quote-pre" wrap="">Could you send us the log?\n</pre>\n    </blockquote>\n    <br>\n'
    "  </body>\n</html>\n"
)
YAHOO = (
    '<html><head></head><body><div class="ydp9d1c2b4ayahoo-style-wrap" style="font-family:Helvetica Neue, '
    'Helvetica, Arial, sans-serif;font-size:13px;"><div dir="ltr" data-setdir="false">Tuesday works for me.</div>'
    '</div><div id="ydp6a1e5c0fyahoo_quoted_8371642957" class="ydp6a1e5c0fyahoo_quoted"><div style="font-family:'
    "'Helvetica Neue', Helvetica, Arial, sans-serif;font-size:13px;color:#26282a;\"><div>On Monday, November 2, "
    "2026 at 10:00:00 AM GMT, Support &lt;support@desk.example&gt; wrote:</div><div><br></div><div><br></div>"
    '<div><div dir="ltr">When can the technician come?</div></div></div></div></body></html>'
)
WEBMAIL_BLOCKQUOTE = (
    "<p>Done, I have reset it.</p><p>On Mon, Nov 2, 2026 at 10:00 AM Support &lt;support@desk.example&gt; wrote:"
    '</p><blockquote style="border-left:2px solid #ccc;padding-left:8px">Please reset your password.</blockquote>'
)


@pytest.mark.parametrize(
    ("html", "new_text", "quoted_text"),
    [
        (GMAIL, "Thanks, the replacement arrived today.\n\nBest,\nAnn", "We have shipped a replacement."),
        (OUTLOOK_WEB, "The invoice number is 4471.", "Which invoice do you mean?"),
        (OUTLOOK_DESKTOP, "Yes, please cancel it.\n\nKind regards,\nAnn Example", "Shall we cancel the order?"),
        (OUTLOOK_2003, "Got it, thanks.", "The order shipped."),
        (APPLE_MAIL, "It works now, thank you!\n\nAnn", "Please restart the router."),
        (IPHONE, "Sure, Tuesday is fine.", "Would Tuesday suit you?"),
        (THUNDERBIRD, "Here is the log you asked for.", "Could you send us the log?"),
        (YAHOO, "Tuesday works for me.", "When can the technician come?"),
        (WEBMAIL_BLOCKQUOTE, "Done, I have reset it.", "Please reset your password."),
    ],
    ids=["gmail", "outlook-web", "outlook-desktop", "outlook-2003", "apple-mail", "iphone", "thunderbird", "yahoo",
         "webmail-blockquote"],
)  # fmt: skip
def test_new_text_of_an_html_reply_without_the_quote(html, new_text, quoted_text):
    reply = html_reply(html)

    assert reply.is_split
    assert reply.text == new_text
    assert quoted_text not in reply.html and " wrote:" not in reply.text and "From:" not in reply.text
    assert quoted_text in reply.full_text and new_text.split("\n")[0] in reply.full_text


def test_an_answer_written_between_the_quotes_keeps_everything():
    html = (
        '<div>See my answers below.</div><blockquote type="cite">1. What is your order number?</blockquote>'
        '<div>It is 4471.</div><blockquote type="cite">2. When did you order?</blockquote><div>Last Monday.</div>'
    )

    reply = html_reply(html)

    assert not reply.is_split
    assert reply.html == html
    assert "It is 4471." in reply.text and "Last Monday." in reply.text


def test_a_forward_is_content_not_quoted_history():
    html = (
        '<div dir="ltr">FYI, see below.<br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        '---------- Forwarded message ---------<br>From: <strong class="gmail_sendername" dir="auto">Shop'
        '</strong> <span dir="auto">&lt;<a href="mailto:shop@example.com">shop@example.com</a>&gt;</span><br>'
        "Date: Mon, 2 Nov 2026 at 10:00<br>Subject: Your order<br>To: &lt;ann@example.com&gt;<br></div><br><br>"
        "<div>Your order has shipped.</div></div></div>"
    )

    reply = html_reply(html)

    assert not reply.is_split
    assert "Your order has shipped." in reply.text


@pytest.mark.parametrize("html", ["", "<p>Just a question, no quote.</p>", "<blockquote>A quote only</blockquote>"])
def test_without_a_quote_or_without_new_text_the_whole_is_kept(html):
    reply = html_reply(html)

    assert not reply.is_split
    assert reply.html == html
    assert reply.text == html_to_text(html)


def test_malformed_markup_that_the_parser_refuses_keeps_the_whole():
    html = "<p>Hi</p><![bogus[ x ]]><div class=gmail_quote>On Mon, Ann wrote:<blockquote>old</blockquote></div>"

    reply = html_reply(html)

    # html.parser raises on "<![bogus[": the message is kept whole rather than failing.
    assert not reply.is_split
    assert reply.html == html
    assert reply.text.startswith("Hi")


@pytest.mark.parametrize("name", ["android", "aol", "comcast", "gmail", "hotmail", "sparrow"])
def test_html_parts_of_the_corpus_replies_split_like_their_text_parts(name):
    message = BytesParser(policy=email.policy.default).parsebytes((REPLIES / f"{name}.eml").read_bytes())
    html = next(part for part in message.walk() if part.get_content_type() == "text/html").get_content()

    reply = html_reply(html)

    assert reply.is_split
    assert reply.text.splitlines()[0] == "Hello"
    assert "Hi" not in reply.text.split()


def html_only_email(html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.com>"
    message["To"] = "support@desk.example"
    message["Subject"] = "Re: Your order [#42]"
    message["Message-ID"] = "<reply-1@mail.example>"
    message.set_content(html, subtype="html")
    return message.as_bytes()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("html", "new_text"),
    [(GMAIL, "Thanks, the replacement arrived today.\n\nBest,\nAnn"), (OUTLOOK_WEB, "The invoice number is 4471.")],
)
def test_parse_email_gives_the_new_text_of_html_only_mail_and_keeps_the_whole(html, new_text):
    inbound = parse_email(html_only_email(html), channel=None)

    assert inbound.text == new_text
    assert inbound.html.strip() == html.strip()
    assert inbound.metadata["full_text"] == html_to_text(html)


def test_thousands_of_unclosed_and_stray_tags_still_split():
    html = (
        "<div>" * 5000
        + "Thanks!"
        + "</span>" * 5000
        + '<div class="gmail_quote">On Mon, 2 Nov 2026 at 10:00, Support wrote:<blockquote>Old</blockquote></div>'
    )

    reply = html_reply(html)

    assert reply.is_split
    assert reply.text == "Thanks!"
    assert reply.html.endswith("</div>" * 5000)
