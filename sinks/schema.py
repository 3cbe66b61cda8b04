"""ClickHouse tables of the audit log: DDL and column order for inserts.

Both tables are plain MergeTree tables, created at sink start with
`CREATE TABLE IF NOT EXISTS`. On a ClickHouse cluster, create them beforehand
as Replicated tables with the same columns; the sink then leaves them as they
are.

Design points shared by both tables:

- `PARTITION BY toYYYYMM(received_at)`: one partition per month, so time
  ranges prune whole partitions and old months go with `DROP PARTITION`.
- The sink inserts the rows of one Kafka partition and one month at a time,
  in offset order, so an insert below min_insert_block_size_bytes (256 MiB by
  default) becomes one data part, which ClickHouse writes atomically.
- The aggregate projection `kafka_positions` keeps max(offset) per Kafka topic
  and partition inside each part. The sink reads it at partition assignment to
  resume after the last stored offset, so the lookup reads a few rows per part
  instead of scanning the table.
- `non_replicated_deduplication_window` makes a plain MergeTree remember the
  last inserts' deduplication tokens, so a retried insert with the same
  `insert_deduplication_token` is dropped (checked on chDB 4.4).
- `lightweight_mutation_projection_mode = 'rebuild'` lets data teams delete
  rows with lightweight DELETE (for example to erase personal data), which
  chDB 4.4 otherwise rejects on a table with a projection. Deleted rows whose
  offsets are committed are not read again, because the sink never resumes
  before the committed offset.
"""

from __future__ import annotations

import re

from hookline.errors import ConfigError

TABLE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")

# Number of recent insert tokens each table remembers for deduplication.
DEDUPLICATION_WINDOW = 1000

EVENT_COLUMNS = (
    "receipt_id",
    "source",
    "event_id",
    "event_type",
    "received_at",
    "content_type",
    "remote_addr",
    "request_headers",
    "body",
    "body_size",
    "topic",
    "partition",
    "offset",
    "parse_error",
)

REJECTION_COLUMNS = (
    "receipt_id",
    "source",
    "received_at",
    "status",
    "reason",
    "content_type",
    "remote_addr",
    "request_headers",
    "body",
    "body_size",
    "topic",
    "partition",
    "offset",
    "parse_error",
)

_TABLE_SETTINGS = f"""
SETTINGS
    non_replicated_deduplication_window = {DEDUPLICATION_WINDOW},
    lightweight_mutation_projection_mode = 'rebuild'"""

_KAFKA_COLUMNS = """\
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    parse_error String COMMENT 'why the Kafka record could not be parsed, else empty',
    inserted_at DateTime64(6, 'UTC') DEFAULT now64(6),
    PROJECTION kafka_positions
    (
        SELECT topic, partition, max(offset) GROUP BY topic, partition
    )"""


def events_table_ddl(table: str) -> str:
    """Return the CREATE TABLE statement of the accepted-deliveries table."""
    check_table_name(table)
    # ORDER BY: data teams filter by source, then event type, then time
    # ("stripe payment events last week"). The low-cardinality columns first
    # keep the primary index selective for those filters and compress well;
    # received_at last keeps each (source, type) run in time order.
    return f"""
CREATE TABLE IF NOT EXISTS {table}
(
    receipt_id UUID,
    source LowCardinality(String),
    event_id String,
    event_type LowCardinality(String),
    received_at DateTime64(6, 'UTC'),
    content_type LowCardinality(String),
    remote_addr String,
    request_headers Map(String, String),
    body String CODEC(ZSTD(3)) COMMENT 'request body byte for byte',
    body_size UInt32,
{_KAFKA_COLUMNS}
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, event_type, received_at){_TABLE_SETTINGS}
"""


def rejections_table_ddl(table: str) -> str:
    """Return the CREATE TABLE statement of the rejected-requests table."""
    check_table_name(table)
    # ORDER BY: rejections are read per source over a time range, then grouped
    # by reason, so (source, received_at) serves those queries.
    return f"""
CREATE TABLE IF NOT EXISTS {table}
(
    receipt_id UUID,
    source LowCardinality(String),
    received_at DateTime64(6, 'UTC'),
    status UInt16,
    reason LowCardinality(String),
    content_type LowCardinality(String),
    remote_addr String,
    request_headers Map(String, String),
    body String CODEC(ZSTD(3)) COMMENT 'start of the request body, truncated by ingest',
    body_size UInt32 COMMENT 'size of the whole body if ingest sent it, else of body',
{_KAFKA_COLUMNS}
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, received_at){_TABLE_SETTINGS}
"""


def check_table_name(table: str) -> None:
    """Raise ConfigError unless TABLE is a plain `name` or `database.name` identifier.

    Table names are written into SQL unquoted, so only identifiers are allowed.
    """
    if not TABLE_NAME_PATTERN.match(table):
        raise ConfigError(
            f"table name {table!r} is invalid; use letters, digits and '_', "
            "optionally as database.table"
        )
