"""Blocking calls into ClickHouse through clickhouse-connect.

The functions here work the same on the embedded engine (chDB) and on a
ClickHouse server over HTTP(S). They block, so the sink runs them in its one
ClickHouse thread (`sinks.store.AuditStore`); `sinks.query` calls them
directly.

Errors from clickhouse-connect are `clickhouse_connect.driver.exceptions.
ClickHouseError` subclasses and pass through unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sinks.dsn import embedded_path
from sinks.errors import DataFolderLockedError
from sinks.folder import lock_owner
from sinks.results import BYTES_FORMATS, json_row
from sinks.schema import events_table_ddl, rejections_table_ddl
from sinks.statements import single_statement

# HTTP client timeouts. An insert that takes longer is retried, and the
# sink drops the rows of the first attempt if it landed after all.
HTTP_CONNECT_TIMEOUT_SECONDS = 5
HTTP_SEND_RECEIVE_TIMEOUT_SECONDS = 60

# Session settings of read-only query clients. readonly=1 rejects writes, DDL
# and any change of settings, these limits included. The limits keep one
# query from stalling inserts or exhausting the sink's memory.
# NOTE: checked on chDB 4.4 only. Over HTTP, clickhouse-connect sends these
# settings with every request, which no test here runs against a live server.
READ_ONLY_SETTINGS: dict[str, Any] = {
    "max_execution_time": 60,
    "max_result_bytes": 256 * 1024 * 1024,
    "result_overflow_mode": "throw",
    "readonly": 1,
}

# Per-insert settings. async_insert=0 makes each insert one synchronous part
# even where a server profile enables asynchronous inserts.
INSERT_SETTINGS: dict[str, Any] = {"async_insert": 0, "insert_deduplicate": 1}


def open_client(dsn: str, *, read_only: bool = False) -> Client:
    """Open a clickhouse-connect client for a normalised DSN (see `sinks.dsn`).

    Raises:
        DataFolderLockedError: another process has the chDB data folder open.
        ClickHouseError: the server cannot be reached or rejected the session.
    """
    settings = dict(READ_ONLY_SETTINGS) if read_only else {}
    folder = embedded_path(dsn)
    if folder is None:
        return clickhouse_connect.get_client(
            dsn=dsn,
            settings=settings,
            tz_mode="aware",
            connect_timeout=HTTP_CONNECT_TIMEOUT_SECONDS,
            send_receive_timeout=HTTP_SEND_RECEIVE_TIMEOUT_SECONDS,
        )

    # Probe the lock first: chDB prints its own lock error to stderr before
    # raising a generic "Error initializing EmbeddedServer".
    _raise_if_locked(folder)
    try:
        return clickhouse_connect.get_client(dsn=dsn, settings=settings, tz_mode="aware")
    except ClickHouseError as error:
        _raise_if_locked(folder, error)
        raise


def create_tables(client: Client, events_table: str, rejections_table: str) -> None:
    """Create the audit tables unless they exist."""
    client.command(events_table_ddl(events_table))
    client.command(rejections_table_ddl(rejections_table))


def insert_rows(
    client: Client,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    token: str,
) -> None:
    """Insert ROWS into TABLE as one insert with deduplication token TOKEN."""
    settings = dict(INSERT_SETTINGS, insert_deduplication_token=token)
    client.insert(table, rows, column_names=list(columns), settings=settings)


def stored_max_offsets(
    client: Client, table: str, topic: str, partitions: Sequence[int]
) -> dict[int, int]:
    """Return the maximum stored offset of each of PARTITIONS of TOPIC that has rows."""
    if not partitions:
        return {}
    result = client.query(
        f"SELECT partition, max(offset) FROM {table} "
        "WHERE topic = {topic:String} AND partition IN {partitions:Array(UInt32)} "
        "GROUP BY partition",
        parameters={"topic": topic, "partitions": list(partitions)},
    )
    return {int(partition): int(offset) for partition, offset in result.result_rows}


def read_only_query(client: Client, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement on a read-only client and return column names and JSON-safe rows.

    Raises:
        QueryError: SQL is not exactly one statement.
        ClickHouseError: ClickHouse rejected the query.
    """
    statement = single_statement(sql)
    result = client.query(statement, query_formats=BYTES_FORMATS)
    return list(result.column_names), [json_row(row) for row in result.result_rows]


def _raise_if_locked(folder: Path, cause: Exception | None = None) -> None:
    owner = lock_owner(folder)
    if owner is None or owner == os.getpid():
        return
    raise DataFolderLockedError(folder, owner if owner > 0 else None) from cause
