"""Find a delivery's event id and type with the source's locators.

A locator is `header:<Name>` (case-insensitive header name) or
`json:<JSON pointer>` (RFC 6901) into the body. The body is parsed only when a
`json:` locator needs it, and a body that is not JSON yields no value.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

HEADER_PREFIX = "header:"
JSON_PREFIX = "json:"

# Returned by `resolve_pointer` when the pointer matches nothing; None is a JSON value.
MISSING = object()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """Return the value at POINTER in DOCUMENT, or `MISSING` when there is none.

    Follows RFC 6901: `""` is the whole document, each `/`-separated token
    names a member or an array index, and `~1` and `~0` stand for `/` and `~`.
    """
    tokens = _pointer_tokens(pointer)
    if tokens is None:
        return MISSING
    return _resolve_tokens(document, tokens)


# Pointers come from the source config, so the cache contains few entries.
@lru_cache(maxsize=1024)
def _pointer_tokens(pointer: str) -> tuple[str, ...] | None:
    # None when POINTER is neither empty nor starts with "/", so it matches nothing.
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        return None
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/"))


def _resolve_tokens(document: Any, tokens: tuple[str, ...]) -> Any:
    value = document
    for token in tokens:
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


# Locators come from the source config, so the cache contains few entries.
@lru_cache(maxsize=1024)
def _parse_locator(locator: str) -> tuple[str | None, Any]:
    # Returns the prefix and the parsed rest. For `header:` the rest is the
    # lower-case header name. For `json:` it is the pointer tokens, or None
    # when the pointer is invalid.
    if locator.startswith(HEADER_PREFIX):
        return HEADER_PREFIX, locator.removeprefix(HEADER_PREFIX).strip().lower()
    if locator.startswith(JSON_PREFIX):
        return JSON_PREFIX, _pointer_tokens(locator.removeprefix(JSON_PREFIX))
    return None, None


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
        kind, target = _parse_locator(locator)
        if kind == HEADER_PREFIX:
            return self.headers.get(target) or None
        if kind == JSON_PREFIX:
            document = self._json()
            if document is MISSING or target is None:
                return None
            return _as_text(_resolve_tokens(document, target))
        return None

    def _json(self) -> Any:
        if not self._parsed:
            self._parsed = True
            try:
                self._document = orjson.loads(self.body)
            except orjson.JSONDecodeError:
                self._document = MISSING
        return self._document
