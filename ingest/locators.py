"""Find a delivery's event id and type with the source's locators.

A locator is `header:<Name>` (case-insensitive header name) or
`json:<JSON pointer>` (RFC 6901) into the body. The body is parsed only when a
`json:` locator needs it, and a body that is not JSON yields no value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

# Returned by `resolve_pointer` when the pointer matches nothing; None is a JSON value.
MISSING = object()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """Return the value at POINTER in DOCUMENT, or `MISSING` when there is none.

    Follows RFC 6901: `""` is the whole document, each `/`-separated token
    names a member or an array index, and `~1` and `~0` stand for `/` and `~`.
    """
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        return MISSING

    value = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            value = value.get(token, MISSING)
        elif isinstance(value, list):
            value = _array_item(value, token)
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def _array_item(array: list[Any], token: str) -> Any:
    # RFC 6901 array indexes are decimal digits without leading zeros.
    if not (token.isascii() and token.isdigit()) or (len(token) > 1 and token[0] == "0"):
        return MISSING
    index = int(token)
    return array[index] if index < len(array) else MISSING


def _as_text(value: Any) -> str | None:
    # Ids are strings or integers in every provider's payloads. Booleans,
    # objects and arrays are not ids, and an empty string identifies nothing.
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


class EventLocator:
    """Resolve locators against one request, parsing its JSON body at most once.

    Args:
        headers: Request headers with lower-case names.
        body: The raw request body.
    """

    def __init__(self, headers: Mapping[str, str], body: bytes) -> None:
        self.headers = headers
        self.body = body
        self._document: Any = None
        self._parsed = False

    def find(self, locator: str | None) -> str | None:
        """Return the text LOCATOR points to, or None when it finds nothing."""
        if locator is None:
            return None
        if locator.startswith("header:"):
            return self.headers.get(locator.removeprefix("header:").strip().lower()) or None
        if locator.startswith("json:"):
            document = self._json()
            if document is MISSING:
                return None
            return _as_text(resolve_pointer(document, locator.removeprefix("json:")))
        return None

    def _json(self) -> Any:
        if not self._parsed:
            self._parsed = True
            try:
                self._document = orjson.loads(self.body)
            except orjson.JSONDecodeError:
                self._document = MISSING
        return self._document
