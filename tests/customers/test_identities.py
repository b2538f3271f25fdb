"""Identity normalisation: however a channel wrote an address, one person has one stored value."""

import re

import pytest

from customers.identities import normalise_email, normalise_identity, normalise_phone


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("ann@example.com", "ann@example.com"),
        ("Ann.Lee@Example.COM", "ann.lee@example.com"),
        ("  ann@example.com\n", "ann@example.com"),
        ("<ann@example.com>", "ann@example.com"),
        (" <Ann@EXAMPLE.com> ", "ann@example.com"),
        ("ann+orders@mail.example.co.uk", "ann+orders@mail.example.co.uk"),
    ],
)
def test_emails_are_stored_trimmed_and_lower_case(written, stored):
    assert normalise_email(written) == stored
    assert normalise_identity("email", written) == stored


@pytest.mark.parametrize(
    "written",
    [
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "ann@@example.com",
        "ann lee@example.com",
        "Ann Lee <ann@example.com>",
        "ann(at)example.com",
    ],
)
def test_invalid_emails_are_refused(written):
    with pytest.raises(ValueError, match=r"^not a valid email address$"):
        normalise_identity("email", written)


@pytest.mark.parametrize(
    ("written", "region", "stored"),
    [
        ("+14155550100", None, "+14155550100"),
        ("(415) 555-0100", None, "+14155550100"),  # DEFAULT_PHONE_REGION is US
        ("415.555.0100", None, "+14155550100"),
        ("415 555 0100", None, "+14155550100"),
        ("1-415-555-0100", None, "+14155550100"),
        ("+1 415 555 0100", None, "+14155550100"),
        ("  +33 6 12 34 56 78 ", None, "+33612345678"),
        ("0412 345 678", "AU", "+61412345678"),  # national trunk prefix 0
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("0044 20 7946 0958", "GB", "+442079460958"),  # international prefix from the UK
        ("011 44 20 7946 0958", None, "+442079460958"),  # international prefix from the US
        ("+44 (0)20 7946 0958", None, "+442079460958"),
        ("+61 412 345 678", "US", "+61412345678"),  # a +country wins over the region
    ],
)
def test_phone_numbers_are_stored_as_e164(written, region, stored):
    assert normalise_phone(written, region=region) == stored
    assert normalise_identity("phone", written, phone_region=region) == stored


def test_the_default_phone_region_comes_from_settings(settings):
    settings.HELPDESK = {**settings.HELPDESK, "DEFAULT_PHONE_REGION": "AU"}

    assert normalise_phone("0412 345 678") == "+61412345678"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("call me maybe", "not a phone number"),
        ("+999 123", "not a phone number"),  # no such country code
        ("415555010000000000", "not a phone number"),  # too long to be a number
        ("123", "not a possible phone number"),  # too short
        ("+1 415 555", "not a possible phone number"),
    ],
)
def test_garbage_and_impossible_numbers_are_refused(written, reason):
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        normalise_identity("phone", written)


@pytest.mark.parametrize(
    "written",
    [
        "whatsapp:+14155550100",  # another channel's address: the SMS webhook quarantines it too
        "tel:+14155550100",
        "1-800-FLOWERS",  # phonenumbers reads letters as keypad digits
        "+1 415 555 0100 ext. 12",
        "\uff0b\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff10\uff10",  # full-width digits
        "+1 415 555\x000100",
    ],
)
def test_what_is_not_written_with_ascii_digits_and_separators_is_not_a_phone_number(written):
    """One parser for every channel: the API channel, the customer API and the SMS webhook refuse the same values."""
    with pytest.raises(ValueError, match=r"^not a phone number$"):
        normalise_phone(written)


@pytest.mark.parametrize(
    ("kind", "written", "stored"),
    [
        ("external", "  user-42 ", "user-42"),
        ("external", "CaseMatters", "CaseMatters"),
        ("chat_visitor", " v_9f8e ", "v_9f8e"),
    ],
)
def test_opaque_ids_are_only_trimmed(kind, written, stored):
    assert normalise_identity(kind, written) == stored


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("email", "", "empty identity value"),
        ("phone", "   ", "empty identity value"),
        ("external", None, "empty identity value"),
        ("fax", "+14155550100", "unknown identity kind 'fax'"),
        ("external", "x" * 321, "identity value too long"),
    ],
)
def test_unusable_identities_are_refused(kind, value, reason):
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        normalise_identity(kind, value)
