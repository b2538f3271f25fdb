"""helpdesk.text: the one rule for text PostgreSQL cannot store, ASCII integers, and the visible length limit."""

import dataclasses

import pytest

from helpdesk.text import ascii_int, storable, storable_text, text_within_limit


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("plain", "plain"),
        ("a\x00b", "ab"),
        ("\x00\x00", ""),
        ("a\ud800b", "a\ufffdb"),
        ("\udfff", "\ufffd"),
        ("\udcff name", "\ufffd name"),  # what surrogateescape leaves for an undecodable byte
        ("emoji 😀 and \ufffd stay", "emoji 😀 and \ufffd stay"),
        ("tabs\tand\nnewlines\x01stay", "tabs\tand\nnewlines\x01stay"),
    ],
)
def test_storable_text_removes_nul_and_replaces_lone_surrogates(written, stored):
    assert storable_text(written) == stored
    # What comes out is what PostgreSQL and UTF-8 take.
    assert "\x00" not in storable_text(written)
    storable_text(written).encode("utf-8")


def test_storable_text_returns_clean_text_itself():
    text = "nothing to clean " * 100
    assert storable_text(text) is text


@dataclasses.dataclass(frozen=True)
class Inner:
    name: str
    data: bytes


@dataclasses.dataclass(frozen=True)
class Outer:
    title: str
    inner: tuple[Inner, ...]
    metadata: dict


def test_storable_cleans_every_string_in_mappings_lists_tuples_and_dataclasses():
    value = Outer(
        title="T\x00",
        inner=(Inner(name="n\ud800", data=b"\x00raw bytes stay"),),
        metadata={"k\x00": ["v\x00", 1, None, 2.5, True, {"deep\ud800": ("x\x00",)}]},
    )

    assert storable(value) == Outer(
        title="T",
        inner=(Inner(name="n\ufffd", data=b"\x00raw bytes stay"),),
        metadata={"k": ["v", 1, None, 2.5, True, {"deep\ufffd": ("x",)}]},
    )


def test_storable_returns_unchanged_values_as_the_same_objects():
    value = {"a": [1, "b", {"c": ("d",)}], "e": Inner(name="f", data=b"")}
    assert storable(value) is value


def test_storable_does_not_recurse_so_any_depth_is_cleaned():
    root = current = []
    for _ in range(100_000):
        child = []
        current.append(child)
        current = child
    current.append("\x00end")

    cleaned = storable(root)

    for _ in range(100_000):
        cleaned = cleaned[0]
    assert cleaned == ["end"]


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("0", 0),
        ("42", 42),
        (" 42 ", 42),
        ("007", 7),
        (42, 42),
        ("9" * 18, int("9" * 18)),
        ("²", None),
        ("١٢", None),  # int() reads Arabic-Indic digits
        ("\uff11\uff12", None),  # and full-width ones
        ("1_000", None),  # and underscores
        ("+1", None),
        ("-1", None),
        (-1, None),
        ("1.0", None),
        ("", None),
        ("9" * 19, None),
        (None, None),
        (True, None),
        (1.0, None),
        ("1\x00", None),
    ],
)
def test_ascii_int_reads_ascii_digits_only(written, number):
    assert ascii_int(written) == number


@pytest.mark.parametrize(
    ("written", "number"),
    [("-3", -3), (" -3 ", -3), ("3", 3), (-3, -3), ("--3", None), ("- 3", None), ("-", None), ("-\u0663", None)],
)
def test_signed_ascii_int_reads_a_leading_minus_too(written, number):
    assert ascii_int(written, is_signed=True) == number


def test_text_within_limit_keeps_text_that_fits():
    assert text_within_limit("x" * 10, limit=10) == ("x" * 10, False)


def test_text_over_the_limit_is_cut_with_a_note_to_exactly_the_limit():
    text, is_truncated = text_within_limit("x" * 1001, limit=1000)

    assert is_truncated is True
    assert len(text) == 1000
    assert text.endswith(
        "\n\n[Shortened: this message has 1,001 characters and the limit is 1,000. "
        "The whole message is kept as it arrived.]"
    )
    assert text.startswith("x" * 800)
