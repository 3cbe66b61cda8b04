"""Kafka records of `webhooks.raw` and `webhooks.rejected` as audit table rows.

A record that cannot be parsed as a `hookline.records.Delivery` is still
stored, so the audit log misses no delivery and no partition gets stuck on it.
Its row keeps the topic, partition, offset, raw value and any readable
headers, and takes its time from the Kafka record timestamp. Its `parse_error`
gives the reason the record could not be parsed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from hookline.records import BODY_LENGTH, RECEIPT_ID, SOURCE, Delivery

# DateTime64 covers 1900-01-01 to 2299-12-31.
MIN_YEAR = 1900
MAX_YEAR = 2299
MAX_UINT16 = 2**16 - 1
MAX_UINT32 = 2**32 - 1
# Namespace of the receipt ids made up for records without a valid one.
UNPARSED_RECEIPT_NAMESPACE = uuid.UUID("6f0c7a52-54a5-4f4e-9a43-3a4a3c1f2d10")
# Exceptions that Delivery.from_kafka and the checks here raise on a malformed record.
# AttributeError covers a header whose value is null.
PARSE_ERRORS = (KeyError, ValueError, TypeError, AttributeError)


class KafkaRecord(Protocol):
    """The fields of aiokafka's ConsumerRecord that the sink reads."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes | None
    headers: Any


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One table row built from one Kafka record."""

    offset: int
    # received_at as YYYYMM, the table's partition key.
    month: int
    values: tuple[Any, ...]
    parse_error: str = ""


RowBuilder = Callable[[KafkaRecord], AuditRow]


def event_row(record: KafkaRecord) -> AuditRow:
    """Build a `webhook_events` row (schema.EVENT_COLUMNS order) from RECORD."""
    try:
        delivery, receipt_id, received_at, headers = _parse(record)
    except PARSE_ERRORS as error:
        return _unparsed_event_row(record, describe_parse_error(error))

    body = delivery.body
    values = (
        receipt_id,
        delivery.source,
        delivery.event_id or "",
        delivery.event_type or "",
        received_at,
        delivery.content_type,
        delivery.remote_addr,
        headers,
        body,
        len(body),
        record.topic,
        record.partition,
        record.offset,
        "",
    )
    return AuditRow(record.offset, _month(received_at), values)


def rejection_row(record: KafkaRecord) -> AuditRow:
    """Build a `webhook_rejections` row (schema.REJECTION_COLUMNS order) from RECORD."""
    try:
        delivery, receipt_id, received_at, headers = _parse(record)
        status = delivery.status or 0
        if not 0 <= status <= MAX_UINT16:
            raise ValueError(f"status {status} is not an HTTP status code")
        body_size = _body_length(record.headers, len(delivery.body))
    except PARSE_ERRORS as error:
        return _unparsed_rejection_row(record, describe_parse_error(error))

    values = (
        receipt_id,
        delivery.source,
        received_at,
        status,
        delivery.reason or "",
        delivery.content_type,
        delivery.remote_addr,
        headers,
        delivery.body,
        body_size,
        record.topic,
        record.partition,
        record.offset,
        "",
    )
    return AuditRow(record.offset, _month(received_at), values)


def describe_parse_error(error: Exception) -> str:
    """Return a one-line reason for a record that could not be parsed."""
    if isinstance(error, KeyError):
        return f"missing header {error.args[0]}"
    return f"{type(error).__name__}: {error}"


def _parse(record: KafkaRecord) -> tuple[Delivery, uuid.UUID, datetime, dict[str, str]]:
    delivery = Delivery.from_kafka(record.value, record.headers or ())
    receipt_id = uuid.UUID(delivery.receipt_id)

    received_at = delivery.received_at
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    if not MIN_YEAR <= received_at.year <= MAX_YEAR:
        raise ValueError(f"received-at {received_at.isoformat()} is out of range")

    if not isinstance(delivery.request_headers, Mapping):
        raise TypeError("request headers are not a JSON object")
    headers = {str(name): _header_text(value) for name, value in delivery.request_headers.items()}
    if len(delivery.body) > MAX_UINT32:
        raise ValueError(f"body of {len(delivery.body)} bytes exceeds the UInt32 body_size")
    return delivery, receipt_id, received_at, headers


def _header_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _body_length(headers: Iterable[tuple[str, bytes]] | None, stored: int) -> int:
    for name, raw in headers or ():
        if name == BODY_LENGTH:
            length = int(raw.decode("ascii"))
            if not 0 <= length <= MAX_UINT32:
                raise ValueError(f"body length {length} is out of range")
            return length
    return stored


def _unparsed_event_row(record: KafkaRecord, error: str) -> AuditRow:
    receipt_id, source, received_at, body = _known_fields(record)
    values: tuple[Any, ...] = (
        receipt_id,
        source,
        "",
        "",
        received_at,
        "",
        "",
        {},
        body,
        len(body),
        record.topic,
        record.partition,
        record.offset,
        error,
    )
    return AuditRow(record.offset, _month(received_at), values, error)


def _unparsed_rejection_row(record: KafkaRecord, error: str) -> AuditRow:
    receipt_id, source, received_at, body = _known_fields(record)
    values: tuple[Any, ...] = (
        receipt_id,
        source,
        received_at,
        0,
        "",
        "",
        "",
        {},
        body,
        len(body),
        record.topic,
        record.partition,
        record.offset,
        error,
    )
    return AuditRow(record.offset, _month(received_at), values, error)


def _known_fields(record: KafkaRecord) -> tuple[uuid.UUID, str, datetime, bytes]:
    """Return receipt id, source, time and body of a record that failed to parse.

    The receipt id comes from its header when that is a valid UUID, else it is
    derived from topic, partition and offset, so it is the same on every read.
    """
    found: dict[str, str] = {}
    for name, raw in record.headers or ():
        if isinstance(name, str) and isinstance(raw, bytes | bytearray):
            found[name] = bytes(raw).decode("utf-8", "replace")

    try:
        receipt_id = uuid.UUID(found.get(RECEIPT_ID, ""))
    except ValueError:
        location = f"{record.topic}/{record.partition}/{record.offset}"
        receipt_id = uuid.uuid5(UNPARSED_RECEIPT_NAMESPACE, location)

    received_at = datetime.fromtimestamp(max(record.timestamp, 0) / 1000, UTC)
    body = record.value if isinstance(record.value, bytes) else b""
    return receipt_id, found.get(SOURCE, ""), received_at, body


def _month(moment: datetime) -> int:
    return moment.year * 100 + moment.month
