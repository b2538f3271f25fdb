"""The API's JSON parser: DRF's, reading through ``helpdesk.json_input``, so every JSON body of the REST API and
the chat widget is refused with a 400 that says why when it nests too deep or holds numbers jsonb cannot store,
and has its text made storable (``helpdesk.text``) before any serializer sees it."""

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from helpdesk.json_input import JsonInputError, json_input_loads


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_input_loads(stream.read(), encoding=encoding)
        except JsonInputError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
