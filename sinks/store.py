"""Async access to the audit store: every ClickHouse call runs on one worker thread.

clickhouse-connect's clients block, and chDB must never be called from two
threads at once, so every call goes through one single-thread executor. The
clients are opened on first use and opened again after a failed open, so the
sink can start while a ClickHouse server is still down.

A read-only query runs on the same thread as inserts, so a long query delays
inserts until it ends (at most `READ_ONLY_SETTINGS["max_execution_time"]`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client

from sinks import client as calls
from sinks.dsn import embedded_path, redact_dsn

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class AuditStore:
    """Async access to ClickHouse for the sink and its query endpoint."""

    def __init__(self, dsn: str) -> None:
        """Prepare a store for DSN, which must be normalised by `sinks.dsn.normalize_dsn`."""
        self.dsn = dsn
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self._writer: Client | None = None
        self._reader: Client | None = None
        self._closed = False

    @property
    def embedded(self) -> bool:
        """True when the store is a chDB data folder in this process."""
        return embedded_path(self.dsn) is not None

    async def open(self) -> None:
        """Open the writing client now instead of on first use."""
        await self._call(self._writer_client)

    async def create_tables(self, events_table: str, rejections_table: str) -> None:
        """Create the audit tables unless they exist."""
        await self._call(
            lambda: calls.create_tables(self._writer_client(), events_table, rejections_table)
        )

    async def command(self, sql: str) -> None:
        """Run one statement that returns no rows, such as OPTIMIZE TABLE, on the writing client."""
        await self._call(lambda: self._writer_client().command(sql))

    async def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], token: str
    ) -> None:
        """Insert ROWS into TABLE as one insert with deduplication token TOKEN."""
        await self._call(
            lambda: calls.insert_rows(self._writer_client(), table, columns, rows, token)
        )

    async def max_offsets(
        self, table: str, topic: str, partitions: Sequence[int]
    ) -> dict[int, int]:
        """Return the maximum stored offset per partition of TOPIC that has rows in TABLE."""
        return await self._call(
            lambda: calls.stored_max_offsets(self._writer_client(), table, topic, partitions)
        )

    async def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement and return column names and JSON-safe rows."""
        return await self._call(lambda: calls.read_only_query(self._reader_client(), sql))

    async def close(self) -> None:
        """Close the clients after any call in progress, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._close_clients)
        finally:
            self._executor.shutdown(wait=False)

    async def _call(self, function: Callable[[], _T]) -> _T:
        if self._closed:
            raise RuntimeError("the audit store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function)

    def _writer_client(self) -> Client:
        if self._writer is None:
            self._writer = calls.open_client(self.dsn)
            logger.info("opened ClickHouse at %s", redact_dsn(self.dsn))
        return self._writer

    def _reader_client(self) -> Client:
        if self._reader is None:
            # On chDB the writer opens the engine, and the reader shares it.
            self._writer_client()
            self._reader = calls.open_client(self.dsn, read_only=True)
        return self._reader

    def _close_clients(self) -> None:
        for client in (self._reader, self._writer):
            if client is not None:
                client.close()
        self._reader = None
        self._writer = None
