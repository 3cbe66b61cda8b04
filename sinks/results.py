"""Query results as JSON-safe values.

Every path of `sinks.query.run_query` converts rows with `json_row`, so a
query gives the same values whether the sink's endpoint runs it or this process
queries ClickHouse itself.

String columns are read as bytes and decoded as UTF-8 with invalid bytes
replaced by U+FFFD, so a body that is not UTF-8 cannot break the JSON response.
Such a value is no longer byte for byte: select `base64Encode(body)` or
`hex(body)` to get the exact bytes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any

# clickhouse-connect read formats: String values as bytes, decoded here.
BYTES_FORMATS = {"String": "bytes", "FixedString": "bytes"}

JsonValue = Any


def json_value(value: Any) -> JsonValue:
    """Return VALUE as str, int, float, bool, None, list or dict.

    Bytes become text (invalid UTF-8 replaced), times ISO 8601 text, UUIDs,
    IP addresses and decimals text, tuples and sets lists, and map keys text.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return json_value(value.value)
    if isinstance(value, Mapping):
        return {_json_key(key): json_value(item) for key, item in value.items()}
    if isinstance(value, Iterable):
        return [json_value(item) for item in value]
    return str(value)


def json_row(row: Sequence[Any]) -> tuple[JsonValue, ...]:
    """Return ROW with each value converted by `json_value`."""
    return tuple(json_value(value) for value in row)


def _json_key(key: Any) -> str:
    converted = json_value(key)
    return converted if isinstance(converted, str) else str(converted)
