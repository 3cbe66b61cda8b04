"""Unit tests of streams.envelope: reading raw records and writing CloudEvents headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hookline import records
from hookline.records import Delivery
from streams.envelope import (
    DLQ_REASON,
    InvalidRecordError,
    cloudevent_headers,
    dead_letter_record,
    parse_raw_record,
)

RECEIVED_AT = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


def make_delivery(**overrides) -> Delivery:
    fields = {
        "receipt_id": "0190f5d2-0000-7000-8000-000000000001",
        "source": "stripe",
        "received_at": RECEIVED_AT,
        "body": b'{"id": "evt_1", "type": "invoice.paid"}',
        "content_type": "application/json; charset=utf-8",
        "event_id": "evt_1",
        "event_type": "invoice.paid",
        "request_headers": {"stripe-signature": "[redacted]"},
    }
    fields.update(overrides)
    return Delivery(**fields)


def without(headers: list[tuple[str, bytes]], name: str) -> list[tuple[str, bytes]]:
    return [(key, value) for key, value in headers if key != name]


def replaced(headers: list[tuple[str, bytes]], name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [*without(headers, name), (name, value)]


def test_parse_raw_record_reads_delivery():
    delivery = make_delivery()

    event = parse_raw_record(delivery.key, delivery.body, delivery.kafka_headers())

    assert event.key == b"stripe:evt_1"
    assert event.value == delivery.body
    assert event.receipt_id == delivery.receipt_id
    assert event.source == "stripe"
    assert event.received_at == RECEIVED_AT
    assert event.content_type == "application/json; charset=utf-8"
    assert event.event_id == "evt_1"
    assert event.event_type == "invoice.paid"
    assert event.cloudevent_id == "evt_1"


def test_parse_raw_record_without_event_id_or_type():
    delivery = make_delivery(event_id=None, event_type=None)

    event = parse_raw_record(delivery.key, delivery.body, delivery.kafka_headers())

    assert event.event_id is None
    assert event.event_type is None
    assert event.cloudevent_id == delivery.receipt_id


def test_parse_raw_record_empty_id_and_type():
    delivery = make_delivery(event_id="", event_type="")

    event = parse_raw_record(delivery.key, delivery.body, delivery.kafka_headers())

    assert event.event_id is None
    assert event.event_type is None


def test_parse_raw_record_none_value_is_empty_body():
    delivery = make_delivery()

    event = parse_raw_record(delivery.key, None, delivery.kafka_headers())

    assert event.value == b""


@pytest.mark.parametrize(
    "header", [records.RECEIPT_ID, records.SOURCE, records.RECEIVED_AT], ids=str
)
def test_parse_raw_record_missing_header(header: str):
    delivery = make_delivery()
    headers = without(delivery.kafka_headers(), header)

    with pytest.raises(InvalidRecordError) as caught:
        parse_raw_record(delivery.key, delivery.body, headers)

    assert caught.value.reason == f"header {header} is missing or empty"


@pytest.mark.parametrize(
    ("header", "value", "reason_part"),
    [
        pytest.param(records.RECEIVED_AT, b"yesterday", "is not an RFC 3339 timestamp", id="time"),
        pytest.param(records.RECEIVED_AT, b"2026-03-01T12:00:00", "has no UTC offset", id="naive"),
        pytest.param(records.SOURCE, b"Stripe Inc", "is not a valid source name", id="source"),
        pytest.param(records.SOURCE, b"", "is missing or empty", id="empty-source"),
        pytest.param(records.EVENT_TYPE, b"\xff\xfe", "is not valid UTF-8", id="not-utf8"),
        pytest.param(
            records.REQUEST_HEADERS, b"{\xff}", "is not valid UTF-8", id="unread-not-utf8"
        ),
    ],
)
def test_parse_raw_record_malformed_header(header: str, value: bytes, reason_part: str):
    delivery = make_delivery()
    headers = replaced(delivery.kafka_headers(), header, value)

    with pytest.raises(InvalidRecordError) as caught:
        parse_raw_record(delivery.key, delivery.body, headers)

    assert reason_part in caught.value.reason
    assert header in caught.value.reason


def test_parse_raw_record_ignores_other_headers():
    delivery = make_delivery()
    headers = [("traceparent", b"\xff not utf-8"), *delivery.kafka_headers()]

    event = parse_raw_record(delivery.key, delivery.body, headers)

    assert event.event_id == "evt_1"


def test_cloudevent_headers_binary_mode():
    delivery = make_delivery()
    event = parse_raw_record(delivery.key, delivery.body, delivery.kafka_headers())

    headers = cloudevent_headers(event)

    assert headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt_1"),
        ("ce_source", b"/hookline/sources/stripe"),
        ("ce_type", b"invoice.paid"),
        ("ce_time", b"2026-03-01T12:30:45.123456Z"),
        ("content-type", b"application/json; charset=utf-8"),
        ("hookline_receipt_id", delivery.receipt_id.encode()),
    ]


@pytest.mark.parametrize(
    "received_text",
    [
        pytest.param("2026-03-01T12:30:45.123456Z", id="canonical"),
        pytest.param("2026-12-31T23:59:59.999999Z", id="canonical-end-of-year"),
        pytest.param("2026-03-01T00:00:00.000000Z", id="canonical-midnight"),
        pytest.param("2026-03-01T12:30:45.123456+00:00", id="utc-offset"),
        pytest.param("2026-03-01T14:30:45.123456+02:00", id="other-offset"),
        pytest.param("2026-03-01T12:30:45Z", id="no-fraction"),
        pytest.param("2026-03-01T12:30:45.123Z", id="milliseconds"),
        pytest.param("2026-03-01T12:30:45.1234567Z", id="seven-digits"),
        pytest.param("2026-03-01 12:30:45.123456Z", id="space-separator"),
        pytest.param("2026-03-01T12:30:45,123456Z", id="comma-fraction"),
        pytest.param("20260301T123045.123456Z", id="basic-format"),
    ],
)
def test_cloudevent_headers_time_normalized(received_text: str):
    delivery = make_delivery()
    headers = replaced(delivery.kafka_headers(), records.RECEIVED_AT, received_text.encode())
    event = parse_raw_record(delivery.key, delivery.body, headers)

    ce_time = dict(cloudevent_headers(event))["ce_time"]

    assert ce_time == records.format_time(records.parse_time(received_text)).encode()
    assert ce_time.endswith(b"Z")
    assert len(ce_time) == len("2026-03-01T12:30:45.123456Z")


def test_cloudevent_headers_receipt_id_as_ce_id():
    delivery = make_delivery(event_id=None, content_type="")
    event = parse_raw_record(delivery.key, delivery.body, delivery.kafka_headers())

    headers = dict(cloudevent_headers(event))

    assert headers["ce_id"] == delivery.receipt_id.encode()
    assert "content-type" not in headers


def test_cloudevent_headers_require_type():
    delivery = make_delivery(event_type=None)
    event = parse_raw_record(delivery.key, delivery.body, delivery.kafka_headers())

    with pytest.raises(ValueError, match="has no type"):
        cloudevent_headers(event)


def test_dead_letter_record_keeps_record_and_adds_reason():
    headers = [("hookline-source", b"stripe"), ("x-empty", None)]

    record = dead_letter_record("dlq", b"k", b"body", headers, "header hookline-receipt-id missing")

    assert record.topic == "dlq"
    assert record.key == b"k"
    assert record.value == b"body"
    assert record.partition is None
    assert record.headers == [
        ("hookline-source", b"stripe"),
        ("x-empty", b""),
        (DLQ_REASON, b"header hookline-receipt-id missing"),
    ]
