"""The plain-string pieces that let most mail skip the fingerprint pattern must cover every fingerprint: a notice
the pattern recognises is recognised with the shortcut too, in any letter case."""

import pytest

from channels_app.providers.email.bounces import _FINGERPRINTS, _has_fingerprint

# One wording for each alternative of _FINGERPRINTS (two where it has variants).
FINGERPRINT_WORDINGS = [
    "Hi. This is the qmail-send program at mx.example.net.",
    "This is the Postfix program at host mx.example.net.",
    "This message was created automatically by mail delivery software.",
    "   ----- Transcript of session follows -----",
    "The original message was received at Mon, 2 Nov 2026 from relay.example.net",
    "Unable to deliver message to the following address(es).",
    "Your message did not reach the following recipient(s):",
    "Delivery to the following recipients failed.",
    "Delivery to the following recipient has failed permanently:",
    "I'm afraid I wasn't able to deliver your message to the following addresses.",
    "Im afraid I wasnt able to deliver your message.",
    "The following addresses had permanent fatal errors -----",
    "Your message cannot be delivered to the following recipients:",
    "Your mail cannot be delivered to the following address:",
    "Message could not be delivered to the following recipients:",
    "Your message was undeliverable to the following recipients",
    "The mail you sent could not be delivered to: ann@example.com",
    "The following recipient did not receive this message:",
    "The following recipients could not receive this message:",
    "Delivery has failed to these recipients or groups:",
    "Delivery has failed to these recipients or distribution lists:",
]


@pytest.mark.parametrize("wording", FINGERPRINT_WORDINGS)
@pytest.mark.parametrize("case", [str, str.upper, str.lower])
def test_every_fingerprint_is_found_with_the_shortcut(wording, case):
    notice = f"Some preamble.\n\n{case(wording)}\n\nMore text."

    assert _FINGERPRINTS.search(notice)
    assert _has_fingerprint(notice)


@pytest.mark.parametrize(
    "text",
    ["My parcel could not be delivered, please help.", "Thanks for the quick answer!", "Delivery was late again."],
)
def test_a_persons_wording_is_no_fingerprint(text):
    assert not _has_fingerprint(text)
