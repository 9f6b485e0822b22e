"""``BoundedJSONParser``: DRF's JSON parser with a size cap and a nesting cap, answering 400.

DRF reads the request stream itself, past Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` check,
and its parser only turns ``ValueError`` into a 400: a body of 100,000 nested ``[`` made
``json`` raise ``RecursionError`` and the answer endpoint a 500. Here a body larger than
``DATA_UPLOAD_MAX_MEMORY_SIZE``, nested deeper than ``MAX_DEPTH`` or too deep for the JSON
decoder is a ``ParseError`` (400) with a message saying which.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

# No request body of the platform nests deeper than a few levels.
MAX_DEPTH = 32


def _too_deep(data: Any, limit: int) -> bool:
    """Whether ``data`` nests lists/objects more than ``limit`` levels (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return True
        stack.extend((v, depth + 1) for v in value)
    return False


class BoundedJSONParser(JSONParser):
    """JSON request bodies up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes and ``MAX_DEPTH`` levels."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        if stream is None:
            return super().parse(stream, media_type, parser_context)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise ParseError(f"JSON body too large: more than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(body.decode(encoding), parse_constant=strict_constant if self.strict else None)
        except RecursionError:
            raise ParseError(f"JSON body nested too deeply (at most {MAX_DEPTH} levels).") from None
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
        # Brackets are cheap to count; only a body with many of them is walked.
        if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _too_deep(data, MAX_DEPTH):
            raise ParseError(f"JSON body nested too deeply (at most {MAX_DEPTH} levels).")
        return data
