"""``<token:…>`` in URL patterns: the characters our random tokens use, nothing else.

Image, presentation and invitation tokens are ``secrets.token_hex`` / ``token_urlsafe``
output. Any other character (``/img/%00`` made PostgreSQL refuse the query with a 500)
now fails URL resolution: a plain 404 before any query, as for an unknown token.
Importing this module registers the converter (once: Django warns on a second time).
"""

from __future__ import annotations

from django.urls import register_converter


class TokenConverter:
    regex = "[A-Za-z0-9_-]{1,128}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(TokenConverter, "token")
