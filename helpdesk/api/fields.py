"""Serializer fields for what the API reads from users the same way at every entry point (``helpdesk.text``)."""

from rest_framework import serializers

from helpdesk.text import ascii_int


class AsciiIntegerField(serializers.IntegerField):
    """An integer sent as a JSON number, or as a string of ASCII digits (a leading minus allowed).

    DRF's ``IntegerField`` reads a string with ``int()``, which also takes other scripts' digits ("٣" is 3),
    underscores ("1_0") and a decimal part ("3.0"): an id or a version from a user is ASCII digits, as in the
    query strings (``helpdesk.text.ascii_int``). A JSON number that is a whole float (``3.0``) is that integer."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            return data
        if isinstance(data, float) and data.is_integer():
            return int(data)
        if isinstance(data, str):
            if len(data) > self.MAX_STRING_LENGTH:
                self.fail("max_string_length")
            value = ascii_int(data, max_digits=self.MAX_STRING_LENGTH, is_signed=True)
            if value is not None:
                return value
        self.fail("invalid")
