"""The API's JSON parser: DRF's, with limits on how large a body is and how deeply it nests.

The largest body the browser sends is the feedback text (5,000 characters, at most about 30 kB of JSON), so
64 KiB bounds what a request can make the server parse with room to spare. Nesting is limited because
json.loads recurses on it: a body nested a few thousand levels deep exhausted Python's recursion (a 500).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The request body is larger than {MAX_BODY_BYTES} bytes."
    default_code = "body_too_large"


class TooDeep(ParseError):
    default_detail = f"JSON parse error - arrays and objects nested deeper than {MAX_DEPTH} levels."


def nesting(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (0 for a scalar); walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class JSONParser(parsers.JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        body = stream.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge()
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            # Deeper than the interpreter's recursion limit (about a thousand levels); anything shallower
            # parses, and is measured below.
            raise TooDeep() from None
        if nesting(data) > MAX_DEPTH:
            raise TooDeep()
        return data
