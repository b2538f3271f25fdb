"""Form fields that read what agents type the same way the API and the query strings do (``helpdesk.text``)."""

from django import forms
from django.core.exceptions import ValidationError

from helpdesk.text import ascii_int


class AsciiIntegerField(forms.IntegerField):
    """A non-negative integer in ASCII digits. Django's ``IntegerField`` reads with ``int()``, which also takes
    other scripts' digits ("٣" is 3), underscores and a decimal part; every number a console form takes (ids,
    versions, ports, minutes) is ASCII digits."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        number = ascii_int(value if isinstance(value, int) else str(value))
        if number is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number
