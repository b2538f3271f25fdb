"""helpdesk.api.fields.AsciiIntegerField: JSON numbers and ASCII digits, nothing else ``int()`` would read."""

import pytest
from rest_framework import serializers

from helpdesk.api.fields import AsciiIntegerField


class Input(serializers.Serializer):
    number = AsciiIntegerField(min_value=-5)


@pytest.mark.parametrize(
    ("sent", "read"), [(7, 7), ("7", 7), (" 7 ", 7), ("-3", -3), (7.0, 7), (10**20, 10**20), ("0", 0)]
)
def test_json_numbers_and_ascii_digits_are_read(sent, read):
    data = Input(data={"number": sent})

    assert data.is_valid(), data.errors
    assert data.validated_data["number"] == read


@pytest.mark.parametrize("sent", ["٣", "²", "1_0", "3.0", "+3", "1e3", "", " ", True, 7.5, None, [], {}, "7\x00"])
def test_anything_else_is_not_a_valid_integer(sent):
    data = Input(data={"number": sent})

    assert not data.is_valid()
    assert data.errors["number"][0].code in {"invalid", "null"}


def test_a_string_over_drfs_length_guard_is_refused_before_it_is_read():
    data = Input(data={"number": "9" * 1001})

    assert not data.is_valid()
    assert data.errors["number"][0].code == "max_string_length"
