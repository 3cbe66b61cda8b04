"""Unit tests of the audit tables, rows and batches on the embedded engine (chDB).

chDB 4.4 lets a process open one data folder at a time, but a folder may be
opened after every client of the previous one is closed, so each test opens
its own folder in tmp_path through the `store_client` fixture.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, DataError

from hookline.errors import ConfigError
from hookline.records import BODY_LENGTH, Delivery
from sinks.batch import PendingBatch
from sinks.client import (
    create_tables,
    insert_rows,
    open_client,
    read_only_query,
    stored_max_offsets,
)
from sinks.dsn import normalize_dsn
from sinks.errors import QueryError
from sinks.results import BYTES_FORMATS, json_value
from sinks.rows import AuditRow, event_row, rejection_row
from sinks.schema import EVENT_COLUMNS, REJECTION_COLUMNS, check_table_name
from sinks.statements import single_statement

EVENTS = "webhook_events"
REJECTIONS = "webhook_rejections"
# Not valid UTF-8: a lone continuation byte, an invalid start byte and a NUL.
BINARY_BODY = b'{"a":"\x80\xff"}\x00\xfe tail'


@dataclass
class FakeRecord:
    """The ConsumerRecord fields the sink reads."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: Any = field(default_factory=list)
    timestamp: int = 1_700_000_000_000


@pytest.fixture
def store_client(tmp_path: Path) -> Iterator[Client]:
    """A writing client on a fresh chDB folder with both audit tables."""
    client = open_client(normalize_dsn(f"chdb://{tmp_path / 'clickhouse'}"))
    try:
        create_tables(client, EVENTS, REJECTIONS)
        yield client
    finally:
        client.close()


def delivery(**changes: Any) -> Delivery:
    values: dict[str, Any] = {
        "receipt_id": str(uuid.uuid4()),
        "source": "stripe",
        "received_at": datetime(2024, 5, 17, 12, 30, 0, 123456, tzinfo=UTC),
        "body": BINARY_BODY,
        "content_type": "application/json",
        "event_id": "evt_1",
        "event_type": "payment_intent.succeeded",
        "remote_addr": "203.0.113.7",
        "request_headers": {"content-type": "application/json", "stripe-signature": "[redacted]"},
    }
    values.update(changes)
    return Delivery(**values)


def record_of(item: Delivery, offset: int = 0, topic: str = "webhooks.raw") -> FakeRecord:
    return FakeRecord(topic, 2, offset, item.body, item.kafka_headers())


def column_types(client: Client, table: str) -> dict[str, str]:
    result = client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = {table:String}",
        parameters={"table": table},
    )
    return dict(result.result_rows)


def test_create_tables_columns_and_types(store_client: Client) -> None:
    events = column_types(store_client, EVENTS)
    rejections = column_types(store_client, REJECTIONS)

    assert events["receipt_id"] == "UUID"
    assert events["source"] == "LowCardinality(String)"
    assert events["event_type"] == "LowCardinality(String)"
    assert events["received_at"] == "DateTime64(6, 'UTC')"
    assert events["request_headers"] == "Map(String, String)"
    assert events["body"] == "String"
    assert events["partition"] == "UInt32"
    assert events["offset"] == "UInt64"
    assert events["inserted_at"] == "DateTime64(6, 'UTC')"
    assert set(EVENT_COLUMNS) | {"inserted_at"} == set(events)
    assert rejections["status"] == "UInt16"
    assert set(REJECTION_COLUMNS) | {"inserted_at"} == set(rejections)


def test_create_tables_partition_and_order_keys(store_client: Client) -> None:
    result = store_client.query(
        "SELECT name, partition_key, sorting_key FROM system.tables "
        "WHERE database = currentDatabase() ORDER BY name"
    )
    keys = {name: (partition, sorting) for name, partition, sorting in result.result_rows}

    assert keys[EVENTS] == ("toYYYYMM(received_at)", "source, event_type, received_at")
    assert keys[REJECTIONS] == ("toYYYYMM(received_at)", "source, received_at")


def test_create_tables_twice_keeps_rows(store_client: Client) -> None:
    row = event_row(record_of(delivery())).values
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, [row], "t:0:0:0")

    create_tables(store_client, EVENTS, REJECTIONS)

    assert store_client.query(f"SELECT count() FROM {EVENTS}").result_rows == [(1,)]


def test_body_bytes_round_trip(store_client: Client) -> None:
    item = delivery()
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, [event_row(record_of(item)).values], "t:2:0:0")

    result = store_client.query(
        f"SELECT body, hex(body), body_size FROM {EVENTS}", query_formats=BYTES_FORMATS
    )
    body, body_hex, body_size = result.result_rows[0]

    assert body == BINARY_BODY
    assert bytes.fromhex(body_hex.decode()) == BINARY_BODY
    assert body_size == len(BINARY_BODY)


def test_read_only_query_replaces_invalid_utf8(store_client: Client, tmp_path: Path) -> None:
    row = event_row(record_of(delivery())).values
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, [row], "t:2:0:0")
    reader = open_client(normalize_dsn(f"chdb://{tmp_path / 'clickhouse'}"), read_only=True)
    try:
        columns, rows = read_only_query(reader, f"SELECT body, base64Encode(body) FROM {EVENTS}")
    finally:
        reader.close()

    assert columns == ["body", "base64Encode(body)"]
    assert rows[0][0] == BINARY_BODY.decode("utf-8", "replace")
    assert "\ufffd" in rows[0][0]
    assert rows[0][1] == "eyJhIjoigP8ifQD+IHRhaWw="


def test_read_only_query_rejects_writes(store_client: Client, tmp_path: Path) -> None:
    reader = open_client(normalize_dsn(f"chdb://{tmp_path / 'clickhouse'}"), read_only=True)
    try:
        with pytest.raises(DatabaseError, match="readonly"):
            read_only_query(reader, f"TRUNCATE TABLE {EVENTS}")
        with pytest.raises(DatabaseError, match="readonly"):
            read_only_query(reader, "SELECT 1 SETTINGS readonly = 0")
        with pytest.raises(QueryError, match="more than one statement"):
            read_only_query(reader, f"SELECT 1; DROP TABLE {EVENTS}")
    finally:
        reader.close()

    assert column_types(store_client, EVENTS)


def test_dedup_token_drops_repeated_insert(store_client: Client) -> None:
    first = [event_row(record_of(delivery(), offset)).values for offset in range(3)]
    other = [event_row(record_of(delivery(), offset)).values for offset in range(3, 5)]

    insert_rows(store_client, EVENTS, EVENT_COLUMNS, first, "webhooks.raw:2:0:2")
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, first, "webhooks.raw:2:0:2")
    # Same token, other rows: still dropped, so the token alone decides.
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, other, "webhooks.raw:2:0:2")
    count_after_repeats = store_client.query(f"SELECT count() FROM {EVENTS}").result_rows
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, other, "webhooks.raw:2:3:4")

    assert count_after_repeats == [(3,)]
    assert store_client.query(f"SELECT count() FROM {EVENTS}").result_rows == [(5,)]


def test_stored_max_offsets_per_partition(store_client: Client) -> None:
    rows = []
    for partition, offsets in ((0, range(5)), (3, range(10, 13))):
        for offset in offsets:
            record = FakeRecord(
                "webhooks.raw", partition, offset, b"{}", delivery().kafka_headers()
            )
            rows.append(event_row(record).values)
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, rows, "mixed")

    assert stored_max_offsets(store_client, EVENTS, "webhooks.raw", [0, 1, 3]) == {0: 4, 3: 12}
    assert stored_max_offsets(store_client, EVENTS, "other.topic", [0]) == {}
    assert stored_max_offsets(store_client, EVENTS, "webhooks.raw", []) == {}


def test_insert_after_column_type_change_rejected(store_client: Client) -> None:
    rows = [event_row(record_of(delivery(), offset)).values for offset in range(2)]
    too_large = list(rows[1])
    too_large[EVENT_COLUMNS.index("body_size")] = 70_000
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, rows[:1], "t:2:0:0")
    store_client.command(f"ALTER TABLE {EVENTS} MODIFY COLUMN body_size UInt16")

    # Column types sent from before the change would make ClickHouse store 70000 as 4464.
    with pytest.raises(DataError):
        insert_rows(store_client, EVENTS, EVENT_COLUMNS, [tuple(too_large)], "t:2:1:1")
    sizes = store_client.query(f"SELECT body_size FROM {EVENTS} ORDER BY offset").result_rows

    assert sizes == [(len(BINARY_BODY),)]


def test_stored_max_offsets_reads_projection(store_client: Client) -> None:
    row = event_row(record_of(delivery(), 7)).values
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, [row], "t:2:7:7")

    # force_optimize_projection fails the query unless a projection serves it.
    result = store_client.query(
        f"SELECT partition, max(offset) FROM {EVENTS} WHERE topic = 'webhooks.raw' "
        "AND partition IN [2] GROUP BY partition SETTINGS force_optimize_projection = 1"
    )

    assert result.result_rows == [(2, 7)]


def test_events_table_lightweight_delete(store_client: Client) -> None:
    rows = [event_row(record_of(delivery(), offset)).values for offset in range(3)]
    insert_rows(store_client, EVENTS, EVENT_COLUMNS, rows, "t:2:0:2")

    store_client.command(f"DELETE FROM {EVENTS} WHERE offset = 2")

    assert store_client.query(f"SELECT count() FROM {EVENTS}").result_rows == [(2,)]
    assert stored_max_offsets(store_client, EVENTS, "webhooks.raw", [2]) == {2: 1}


def test_event_row_fields() -> None:
    item = delivery()
    row = event_row(record_of(item, offset=41))
    values = dict(zip(EVENT_COLUMNS, row.values, strict=True))

    assert row.offset == 41
    assert row.month == 202405
    assert row.parse_error == ""
    assert values["receipt_id"] == uuid.UUID(item.receipt_id)
    assert values["received_at"] == item.received_at
    assert values["event_id"] == "evt_1"
    assert values["request_headers"] == dict(item.request_headers)
    assert values["body"] == BINARY_BODY
    assert values["topic"] == "webhooks.raw"
    assert values["partition"] == 2


def test_event_row_without_headers_keeps_record() -> None:
    record = FakeRecord("webhooks.raw", 1, 9, b"\x00raw", [("hookline-source", b"github")])

    row = event_row(record)
    values = dict(zip(EVENT_COLUMNS, row.values, strict=True))

    assert row.parse_error == "missing header hookline-receipt-id"
    assert values["parse_error"] == row.parse_error
    assert values["source"] == "github"
    assert values["body"] == b"\x00raw"
    assert values["offset"] == 9
    assert values["received_at"] == datetime.fromtimestamp(1_700_000_000, UTC)
    assert row.month == 202311
    assert event_row(record).values[0] == values["receipt_id"]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        pytest.param("hookline-receipt-id", b"not-a-uuid", id="receipt-id"),
        pytest.param("hookline-received-at", b"yesterday", id="received-at"),
        pytest.param("hookline-received-at", b"1800-01-01T00:00:00Z", id="received-at-range"),
        pytest.param("hookline-request-headers", b"[1, 2]", id="headers-not-object"),
        pytest.param("hookline-request-headers", b"{", id="headers-invalid-json"),
    ],
)
def test_event_row_malformed_header(header: str, value: bytes) -> None:
    headers = [(name, raw) for name, raw in delivery().kafka_headers() if name != header]
    headers.append((header, value))

    row = event_row(FakeRecord("webhooks.raw", 0, 3, b"{}", headers))

    assert row.parse_error
    assert row.values[EVENT_COLUMNS.index("parse_error")] == row.parse_error


def test_unparsed_rows_insert(store_client: Client) -> None:
    record = FakeRecord("webhooks.raw", 0, 5, None, [("hookline-receipt-id", None)])
    rejected = FakeRecord("webhooks.rejected", 0, 6, b"x", [])

    insert_rows(store_client, EVENTS, EVENT_COLUMNS, [event_row(record).values], "a")
    insert_rows(store_client, REJECTIONS, REJECTION_COLUMNS, [rejection_row(rejected).values], "b")

    events = store_client.query(f"SELECT offset, parse_error != '' FROM {EVENTS}").result_rows
    rejections = store_client.query(f"SELECT offset, body FROM {REJECTIONS}").result_rows
    assert events == [(5, True)]
    assert rejections == [(6, "x")]


def test_rejection_row_body_size_from_header() -> None:
    item = delivery(status=401, reason="no_matching_signature", body=b"trunc")
    headers = [*item.kafka_headers(), (BODY_LENGTH, b"70000")]

    row = rejection_row(FakeRecord("webhooks.rejected", 0, 1, item.body, headers))
    values = dict(zip(REJECTION_COLUMNS, row.values, strict=True))

    assert row.parse_error == ""
    assert values["status"] == 401
    assert values["reason"] == "no_matching_signature"
    assert values["body"] == b"trunc"
    assert values["body_size"] == 70000


def test_rejection_row_body_size_defaults_to_body() -> None:
    item = delivery(status=413, reason="body_too_large", body=b"12345")

    row = rejection_row(record_of(item, topic="webhooks.rejected"))

    assert row.values[REJECTION_COLUMNS.index("body_size")] == 5


def rows_at(offsets_and_months: list[tuple[int, int]]) -> list[AuditRow]:
    return [AuditRow(offset, month, ()) for offset, month in offsets_and_months]


def test_batch_next_chunk_splits_at_month() -> None:
    batch = PendingBatch()
    partition = TopicPartition("t", 0)
    batch.add(partition, rows_at([(0, 202401), (1, 202401), (2, 202402), (3, 202401)]))

    first = batch.next_chunk(partition)
    batch.remove_through(partition, first[-1].offset)
    second = batch.next_chunk(partition)
    batch.remove_through(partition, second[-1].offset)
    third = batch.next_chunk(partition)

    assert [row.offset for row in first] == [0, 1]
    assert [row.offset for row in second] == [2]
    assert [row.offset for row in third] == [3]
    assert len(batch) == 1


def test_batch_remove_and_drop_counts() -> None:
    batch = PendingBatch()
    partition_0, partition_1 = TopicPartition("t", 0), TopicPartition("t", 1)
    batch.add(partition_0, rows_at([(5, 1), (6, 1), (7, 1)]))
    batch.add(partition_1, rows_at([(0, 1)]))

    assert batch.remove_through(partition_0, 6) == 2
    assert batch.drop([partition_1, TopicPartition("t", 9)]) == 1
    assert len(batch) == 1
    assert batch.partitions() == [partition_0]
    assert batch.remove_through(partition_0, 100) == 1
    assert len(batch) == 0
    assert batch.age() == 0.0


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param("SELECT 1;", "SELECT 1", id="trailing-semicolon"),
        pytest.param("SELECT ';' ;", "SELECT ';'", id="semicolon-in-string"),
        pytest.param("SELECT 'it''s;'", "SELECT 'it''s;'", id="doubled-quote"),
        pytest.param("SELECT $$a;b$$", "SELECT $$a;b$$", id="heredoc"),
        pytest.param("SELECT 1 -- a;b", "SELECT 1", id="line-comment"),
        pytest.param("SELECT `a;b` FROM t", "SELECT `a;b` FROM t", id="quoted-name"),
        pytest.param("SELECT 'FORMAT JSON'", "SELECT 'FORMAT JSON'", id="format-in-string"),
    ],
)
def test_single_statement_accepts(sql: str, expected: str) -> None:
    assert single_statement(sql) == expected


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param(" ; ", "empty", id="only-semicolon"),
        pytest.param("SELECT 1; SELECT 2", "more than one statement", id="two-statements"),
        pytest.param("SELECT 1 FORMAT JSON", "FORMAT", id="format-clause"),
        pytest.param("SELECT 'a", "unclosed", id="unclosed-quote"),
        pytest.param("SELECT 1 /* x", "unclosed", id="unclosed-comment"),
    ],
)
def test_single_statement_rejects(sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        single_statement(sql)


def test_json_value_nested() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    value = {b"k\xff": [b"v", (1, moment)], 7: uuid.UUID(int=1)}

    assert json_value(value) == {
        "k\ufffd": ["v", [1, "2024-01-02T03:04:05+00:00"]],
        "7": "00000000-0000-0000-0000-000000000001",
    }


@pytest.mark.parametrize("name", ["events;drop", "a b", "1table", "db.t.x", ""])
def test_check_table_name_rejects(name: str) -> None:
    with pytest.raises(ConfigError):
        check_table_name(name)
