"""helpdesk.json_input: JSON from outside read without recursion trouble, unstorable numbers refused, text made
storable; every failure a JsonInputError with a reason."""

import json

import pytest

from helpdesk.json_input import MAX_JSON_DEPTH, JsonInputError, json_depth_check, json_input_loads


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [0, 1, MAX_JSON_DEPTH])
def test_nesting_up_to_the_limit_is_read(depth):
    assert json_input_loads(nested(depth).encode() or b"[]") is not None


@pytest.mark.parametrize(
    "text",
    [
        nested(MAX_JSON_DEPTH + 1),
        nested(100_000),
        "[" * 100_000,  # not even JSON: refused for depth before the parser recurses
        '{"a":' * 5000 + "1" + "}" * 5000,
        '{"k": [' + "[" * 70 + "]" * 70 + "]}",
    ],
    ids=["one over", "100,000", "unclosed", "objects", "inside a value"],
)
def test_nesting_over_the_limit_is_refused_before_parsing(text):
    with pytest.raises(JsonInputError, match=f"^JSON is nested more than {MAX_JSON_DEPTH} levels deep$"):
        json_input_loads(text.encode())


def test_brackets_in_strings_and_escaped_quotes_do_not_count():
    text = json.dumps({"a": "[" * 500 + '\\"' + "{" * 500, "b": ["]" * 10]})

    json_depth_check(text)
    assert json_input_loads(text)["a"].startswith("[[[")


def test_depth_counts_siblings_once():
    json_depth_check(json.dumps([[1]] * 10_000))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"NaN", "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b"[1e400]", "the number 1e400 is too large"),
        (b"{", "body is not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (b'"\xff"', "body is not UTF-8"),
        (b"9" * 5000, "body is not JSON we accept: Exceeds the limit (4300 digits) for integer string conversion"),
    ],
)
def test_what_jsonb_or_the_parser_cannot_take_is_refused_with_a_reason(raw, reason):
    with pytest.raises(JsonInputError) as error:
        json_input_loads(raw)
    assert str(error.value).startswith(reason)


def test_large_integers_and_ordinary_floats_are_kept():
    assert json_input_loads(b'{"big": 123456789012345678901234567890, "f": 1.5e300}') == {
        "big": 123456789012345678901234567890,
        "f": 1.5e300,
    }


def test_strings_come_back_storable_and_escaped_surrogate_pairs_joined():
    raw = b'{"t\\u0000": ["a\\u0000b", "\\ud800", "\\ud83d\\ude00"]}'
    assert json_input_loads(raw) == {"t": ["ab", "\ufffd", "😀"]}


def test_another_charset_is_decoded_as_named():
    assert json_input_loads('{"a": "é"}'.encode("latin-1"), encoding="latin-1") == {"a": "é"}
