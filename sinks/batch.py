"""Rows fetched from Kafka and not yet stored in ClickHouse.

Rows are kept per Kafka topic partition in offset order, because the sink
stores each partition's rows as consecutive runs: the maximum offset in the
table is then the point where a partition resumes, with no gap below it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiokafka import TopicPartition

from sinks.rows import AuditRow


class PendingBatch:
    """Rows waiting for insert, grouped by topic partition."""

    def __init__(self) -> None:
        self._rows: dict[TopicPartition, list[AuditRow]] = {}
        self._count = 0
        self._started_at: float | None = None

    def __len__(self) -> int:
        return self._count

    def partitions(self) -> list[TopicPartition]:
        """Return the partitions that have rows waiting."""
        return list(self._rows)

    def add(self, partition: TopicPartition, rows: Iterable[AuditRow]) -> None:
        """Append ROWS, which follow the rows already waiting for PARTITION in offset order."""
        new_rows = list(rows)
        if not new_rows:
            return
        if self._started_at is None:
            self._started_at = time.monotonic()
        self._rows.setdefault(partition, []).extend(new_rows)
        self._count += len(new_rows)

    def age(self) -> float:
        """Return seconds since the oldest waiting row was added, 0 when empty."""
        if self._started_at is None:
            return 0.0
        return time.monotonic() - self._started_at

    def next_chunk(self, partition: TopicPartition) -> list[AuditRow]:
        """Return the leading rows of PARTITION that fall in one month (one table partition).

        The rows stay in the batch until `remove_through` drops them.
        """
        rows = self._rows.get(partition)
        if not rows:
            return []
        month = rows[0].month
        end = 1
        while end < len(rows) and rows[end].month == month:
            end += 1
        return rows[:end]

    def remove_through(self, partition: TopicPartition, offset: int) -> int:
        """Drop the rows of PARTITION with an offset up to OFFSET; return how many."""
        rows = self._rows.get(partition)
        if not rows:
            return 0
        kept = [row for row in rows if row.offset > offset]
        removed = len(rows) - len(kept)
        if kept:
            self._rows[partition] = kept
        else:
            del self._rows[partition]
        self._count -= removed
        self._reset_if_empty()
        return removed

    def drop(self, partitions: Iterable[TopicPartition]) -> int:
        """Drop every row of PARTITIONS; return how many."""
        dropped = 0
        for partition in partitions:
            dropped += len(self._rows.pop(partition, ()))
        self._count -= dropped
        self._reset_if_empty()
        return dropped

    def _reset_if_empty(self) -> None:
        if self._count == 0:
            self._started_at = None
