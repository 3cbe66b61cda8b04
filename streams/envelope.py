"""Records the router reads from `webhooks.raw` and the records it writes.

A routed record follows the CloudEvents Kafka protocol binding in binary
content mode (CloudEvents 1.0): the value is the provider's payload unchanged
and the event attributes are headers with UTF-8 values:

- `ce_specversion`: `1.0`;
- `ce_id`: the provider's event id, else Hookline's receipt id;
- `ce_source`: `/hookline/sources/<source>`, a URI reference naming the
  webhook source, so `(ce_source, ce_id)` identifies one provider event;
- `ce_type`: the provider's event type, for example `payment_intent.succeeded`;
- `ce_time`: when ingest received the request, RFC 3339 in UTC;
- `ce_subject`: the entity the event is about, when the source config
  locates one (for example a Stripe subscription id);
- `content-type`: the request's Content-Type, left out when the request had none;
- `hookline_receipt_id`: the receipt id of the delivery that was routed.

The key is the entity key when the source config locates one, else the raw
record's key, so records of one entity keep their order within a partition of
each routed topic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import msgspec

from hookline import records
from hookline.config import SOURCE_NAME_PATTERN

SPEC_VERSION = "1.0"
SOURCE_URI_PREFIX = "/hookline/sources/"

CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_SOURCE = "ce_source"
CE_TYPE = "ce_type"
CE_TIME = "ce_time"
CE_SUBJECT = "ce_subject"
CONTENT_TYPE = "content-type"
RECEIPT_ID = "hookline_receipt_id"
DLQ_REASON = "hookline_dlq_reason"

Headers = list[tuple[str, bytes]]

HEADER_PREFIX = "hookline-"
# The `hookline-*` headers that the router reads. The others are only checked
# to be UTF-8.
ROUTER_HEADERS = frozenset(
    {
        records.RECEIPT_ID,
        records.SOURCE,
        records.RECEIVED_AT,
        records.CONTENT_TYPE,
        records.EVENT_ID,
        records.EVENT_TYPE,
        records.ENTITY_KEY,
    }
)
SPEC_VERSION_HEADER = (CE_SPECVERSION, SPEC_VERSION.encode())
# Receive times in the form that `records.format_time` writes. Such a text
# equals the formatted parse of itself, so it becomes `ce_time` unchanged and
# the router skips formatting. Python 3.11 also parses other forms (a space
# for "T", 7 fraction digits, no dashes), which must be formatted.
CANONICAL_TIME_PATTERN = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z"
)


class InvalidRecordError(ValueError):
    """A raw record lacks a header the router needs, or the header is malformed.

    `reason` is the text written to the dead-letter header `hookline_dlq_reason`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RawEvent(msgspec.Struct, frozen=True):
    """The parts of a `webhooks.raw` record that the router uses.

    `received_at_text` is `records.format_time(received_at)` when the header
    already had that form, else empty.
    """

    key: bytes | None
    value: bytes
    receipt_id: str
    source: str
    received_at: datetime
    content_type: str
    event_id: str | None
    event_type: str | None
    entity_key: str | None = None
    received_at_text: str = ""

    @property
    def routed_key(self) -> bytes | None:
        """Key of routed records: the entity key, else the raw record's key."""
        return self.entity_key.encode() if self.entity_key else self.key

    @property
    def cloudevent_id(self) -> str:
        """The CloudEvents id: the provider's event id, else the receipt id."""
        return self.event_id or self.receipt_id


class OutboundRecord(msgspec.Struct, frozen=True):
    """A record the router produces: routed, unrouted, dead-lettered or a table change.

    PARTITION None lets the producer's partitioner choose from the key.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int | None = None


def _decode_headers(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """Decode the router's headers (the last of each name) and check that the rest are UTF-8."""
    decoded: dict[str, str] = {}
    name = ""
    try:
        for name, raw in headers:
            if name in ROUTER_HEADERS:
                decoded[name] = (raw or b"").decode("utf-8")
            elif raw and not raw.isascii() and name.startswith(HEADER_PREFIX):
                raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRecordError(f"header {name} is not valid UTF-8") from None
    return decoded


def _required(found: dict[str, str], name: str) -> str:
    value = found.get(name, "")
    if not value:
        raise InvalidRecordError(f"header {name} is missing or empty")
    return value


def parse_raw_record(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> RawEvent:
    """Read the router's view of a `webhooks.raw` record.

    Only headers are interpreted, never the body: ingest already extracted the
    event id and type, and an empty header counts as missing.

    Raises:
        InvalidRecordError: the receipt id, source or receive time is missing or
            malformed, or a `hookline-*` header is not UTF-8.
    """
    found = _decode_headers(headers)
    receipt_id = _required(found, records.RECEIPT_ID)
    source = _required(found, records.SOURCE)
    if not SOURCE_NAME_PATTERN.match(source):
        raise InvalidRecordError(
            f"header {records.SOURCE} {source!r} is not a valid source name "
            f"(expected {SOURCE_NAME_PATTERN.pattern})"
        )

    received_text = _required(found, records.RECEIVED_AT)
    try:
        received_at = records.parse_time(received_text)
    except ValueError:
        raise InvalidRecordError(
            f"header {records.RECEIVED_AT} {received_text!r} is not an RFC 3339 timestamp"
        ) from None
    if received_at.tzinfo is None:
        raise InvalidRecordError(
            f"header {records.RECEIVED_AT} {received_text!r} has no UTC offset"
        )
    canonical = CANONICAL_TIME_PATTERN.fullmatch(received_text) is not None

    return RawEvent(
        key=key,
        value=value or b"",
        receipt_id=receipt_id,
        source=source,
        received_at=received_at,
        content_type=found.get(records.CONTENT_TYPE, ""),
        event_id=found.get(records.EVENT_ID) or None,
        event_type=found.get(records.EVENT_TYPE) or None,
        entity_key=found.get(records.ENTITY_KEY) or None,
        received_at_text=received_text if canonical else "",
    )


def cloudevent_headers(event: RawEvent) -> Headers:
    """Return the CloudEvents binary-mode headers of a routed record.

    The event must have a type, because `ce_type` is required by CloudEvents.
    """
    if not event.event_type:
        raise ValueError(f"event {event.receipt_id} has no type, so it is not a CloudEvent")

    time_text = event.received_at_text or records.format_time(event.received_at)
    headers: Headers = [
        SPEC_VERSION_HEADER,
        (CE_ID, event.cloudevent_id.encode()),
        (CE_SOURCE, f"{SOURCE_URI_PREFIX}{event.source}".encode()),
        (CE_TYPE, event.event_type.encode()),
        (CE_TIME, time_text.encode()),
    ]
    if event.entity_key:
        headers.append((CE_SUBJECT, event.entity_key.encode()))
    if event.content_type:
        headers.append((CONTENT_TYPE, event.content_type.encode()))
    headers.append((RECEIPT_ID, event.receipt_id.encode()))
    return headers


def dead_letter_record(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    reason: str,
) -> OutboundRecord:
    """Return the dead-letter copy of a raw record: unchanged, plus the reason header."""
    copied: Headers = [(name, raw or b"") for name, raw in headers]
    copied.append((DLQ_REASON, reason.encode()))
    return OutboundRecord(topic=topic, key=key, value=value, headers=copied)
