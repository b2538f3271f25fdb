"""The new text of replies as real mail clients write them: the quoted history goes, the answer stays.

Every reply in tests/fixtures/email_quotes/replies.json (issue 15's cases, the same families in other languages,
mail-parser-reply's and talon's own samples, talon's recorded replies) is checked against the new text written
down there; benchmarks/quote_stripping.py scores the libraries on the same file.
"""

import email
import email.policy
import json
import signal
from pathlib import Path

import pytest

from channels_app.providers.email.html_quotes import html_reply
from channels_app.providers.email.parsing import parse_email
from channels_app.providers.email.quotes import reply_text

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
CASES = json.loads((FIXTURES / "email_quotes" / "replies.json").read_text(encoding="utf-8"))["cases"]
# Cases where ours and talon's expectation differ (documented in docs/email-quotes.md).
KNOWN_MISSES = {
    # ">>> >>> http://... <<<" in a marketing mail is read as a one-line quote and dropped.
    "talon-quotation_marker_false_positive",
    # Two header fields ("Date: / To:") are not a block: a customer's own form looks the same.
    "talon-from_block_starts_with_date",
}


def text_of(case: dict) -> str:
    if "text" in case:
        return case["text"]
    message = email.message_from_bytes((FIXTURES / case["eml"]).read_bytes(), policy=email.policy.default)
    return next(part for part in message.walk() if part.get_content_type() == "text/plain").get_content()


def lines_of(text: str) -> list[str]:
    """What a reader sees: the lines kept, whatever the blank lines and trailing spaces between them."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_the_fixture_file_names_a_source_and_an_expected_text_for_every_reply():
    assert len(CASES) == 128
    assert all(case["source"] and "expected" in case and ("text" in case or "eml" in case) for case in CASES)
    assert len({case["name"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if case["name"] not in KNOWN_MISSES],
    ids=lambda case: case["name"],
)
def test_the_new_text_of_each_recorded_reply(case):
    assert lines_of(reply_text(text_of(case))) == lines_of(case["expected"])


ISSUE_CASES = {case["name"]: case for case in CASES if case["name"].startswith("issue-")}
# The exact new text of each issue 15 case: not only which lines are kept, but how they are laid out.
ISSUE_ANSWERS = [
    ("issue-wrapped-header-3-lines", "Thanks, that fixed it."),
    ("issue-wrapped-header-2-lines", "Here it is."),
    ("issue-answer-below-quote", "Hi,\n\nThe one from October, number 4471.\n\nThanks,\nAnn"),
    ("issue-answer-below-quote-no-greeting", "The one from October."),
    (
        "issue-answer-interleaved",
        "See my answers below.\n\n> 1. What is your order number?\n\nIt is 4471.\n\n> 2. When did you order?"
        "\n\nLast Monday.",
    ),
    ("issue-dutch-schreef", "Ja, dat klopt."),
    ("issue-norwegian-skrev", "Ja, det stemmer."),
    ("issue-portuguese-escreveu", "Sim, está certo."),
    ("issue-finnish-kirjoitti", "Kyllä, pitää paikkansa."),
    ("issue-polish-napisal-a", "Tak, zgadza się."),
    ("issue-german-name-after-verb", "Ja, das stimmt."),
    ("issue-german-thunderbird-name-after-verb", "Hier ist das Log."),
    ("issue-wrote-without-colon", "Yes, that works."),
    ("issue-outlook-french", "Merci, c'est réglé."),
    ("issue-outlook-french-envoye-le", "Merci, c'est réglé."),
    ("issue-outlook-french-envoye-le-no-separator", "Merci, c'est réglé."),
    ("issue-french-message-du", "Bonjour, voici le journal."),
    ("issue-french-message-du-unquoted", "Bonjour, voici le journal."),
    ("issue-outlook-dutch", "Dank je, het werkt."),
    ("issue-outlook-italian", "Grazie, funziona."),
    ("issue-date-and-name-only", "Tuesday is fine."),
    ("issue-date-and-name-only-colon", "Tuesday is fine."),
    ("issue-sent-from-phone-quote-without-header", "Yes, Tuesday works.\n\nSent from my iPhone"),
    ("issue-sent-from-galaxy-original-message", "Yes, Tuesday works.\n\nSent from my Galaxy"),
]


@pytest.mark.parametrize(("name", "new_text"), ISSUE_ANSWERS, ids=[name for name, _ in ISSUE_ANSWERS])
def test_issue_15_reply_comes_down_to_exactly_its_answer(name, new_text):
    assert reply_text(ISSUE_CASES[name]["text"]) == new_text


def test_every_issue_case_is_checked_exactly():
    assert len(ISSUE_CASES) == 24
    assert sorted(name for name, _ in ISSUE_ANSWERS) == sorted(ISSUE_CASES)


def email_with(body: str) -> bytes:
    message = email.message.EmailMessage()
    message["From"] = "Ann Lee <ann@example.com>"
    message["To"] = "support@desk.example"
    message["Subject"] = "Re: Your order [#42]"
    message["Message-ID"] = "<reply-42@mail.example>"
    message.set_content(body)
    return message.as_bytes()


@pytest.mark.parametrize("name", ["issue-answer-below-quote", "issue-outlook-french", "issue-polish-napisal-a"])
def test_parse_email_stores_the_new_text_and_keeps_the_full_text(name):
    body = ISSUE_CASES[name]["text"]

    inbound = parse_email(email_with(body), channel=None)

    assert inbound.text == ISSUE_CASES[name]["expected"]
    assert inbound.metadata["full_text"].strip() == body.strip()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n\n",
        ">",
        "> only a quote\n> nothing else",
        "On Mon, 2 Nov 2026 at 10:00, Support <support@desk.example> wrote:",
        "From: Support\nSent: Monday\nTo: Ann\nSubject: Hi",
        "Sent from my iPhone",
    ],
    ids=["empty", "blank-lines", "one-quote-mark", "only-quotes", "only-a-header", "only-a-block", "only-sent-from"],
)
def test_when_nothing_but_quotes_or_headers_would_be_left_the_text_is_kept_whole(text):
    assert reply_text(text) == text


class _TookTooLong(Exception):
    pass


def _raise_took_too_long(signum, frame):
    raise _TookTooLong


@pytest.mark.parametrize(
    "text",
    [
        "a" * 200_000,
        "On " + "1, " * 66_666 + "x wrote:",
        "\n".join([">"] * 50_000),
        "\n".join(["> q", "answer"] * 25_000),
        "Hi\n" + "\n".join(["On 1 2 3 4 5 6 7 8 9"] * 20_000),
        "Hi\n" + " " * 100_000 + "wrote:\n> x",
        "Hi\n" + "From: a\n" * 20_000,
        "\x00\ud800\r\r\n" * 10_000,
    ],
    ids=["one-long-line", "long-attribution-line", "50000-quote-marks", "50000-interleaved", "20000-on-lines",
         "spaces-then-wrote", "20000-from-lines", "nul-surrogates-and-bare-cr"],
)  # fmt: skip
def test_pathological_input_neither_raises_nor_backtracks(text):
    # Not a timing assertion: a backtracking pattern takes minutes here, the linear scan well under a second.
    # The alarm only turns "hangs the test run" into a failure (benchmarks/quote_stripping.py times it).
    previous = signal.signal(signal.SIGALRM, _raise_took_too_long)
    signal.alarm(30)
    try:
        new = reply_text(text)
        # Lone surrogates never reach the HTML: parts are decoded from bytes with replacement.
        html = html_reply("<p>" + text.replace("\ud800", "").replace("\n", "<br>") + "</p>")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

    assert isinstance(new, str) and len(new) <= len(text)
    assert isinstance(html.text, str)


HTML_OUTLOOK_FRENCH = (
    '<html><body><div>Merci, c\'est réglé.</div><div><br></div><hr style="display:inline-block;width:98%">'
    '<div id="x_divRplyFwdMsg" dir="ltr"><b>De :</b> Support &lt;support@desk.example&gt;<br><b>Envoyé :</b> '
    "lundi 2 novembre 2026 10:00<br><b>À :</b> Ann &lt;ann@example.com&gt;<br><b>Objet :</b> RE: Votre commande"
    "</div><div><br></div><div>Pouvez-vous nous envoyer le journal ?</div></body></html>"
)
HTML_GMAIL_PORTUGUESE_WRAPPED = (
    '<div dir="ltr">Sim, está certo.</div><br><div><div dir="ltr">Em seg., 2 de nov. de 2026 às 10:00, Support'
    "<br>&lt;support@desk.example&gt; escreveu:<br></div><div>Pode confirmar o pedido?</div></div>"
)
HTML_DUTCH_OUTLOOK_BLOCK = (
    "<p>Dank je, het werkt.</p><p>Van: Support &lt;support@desk.example&gt;<br>Verzonden: maandag 2 november "
    "2026 10:00<br>Aan: Ann<br>Onderwerp: RE: Uw bestelling</p><p>Kunt u het logbestand sturen?</p>"
)


@pytest.mark.parametrize(
    ("html", "new_text", "quoted_text"),
    [
        (HTML_OUTLOOK_FRENCH, "Merci, c'est réglé.", "Pouvez-vous nous envoyer le journal ?"),
        (HTML_GMAIL_PORTUGUESE_WRAPPED, "Sim, está certo.", "Pode confirmar o pedido?"),
        (HTML_DUTCH_OUTLOOK_BLOCK, "Dank je, het werkt.", "Kunt u het logbestand sturen?"),
    ],
    ids=["outlook-french-unmarked-id", "gmail-portuguese-wrapped", "outlook-dutch-block"],
)
def test_html_replies_lose_localised_quote_headers_too(html, new_text, quoted_text):
    reply = html_reply(html)

    assert reply.is_split
    assert reply.text == new_text
    assert quoted_text in reply.full_text and quoted_text not in reply.text
