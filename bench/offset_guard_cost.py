"""Time the raw offset guard's share of the router's fetch loop, without Kafka.

`python -m bench.offset_guard_cost` drains batches of raw records through a consumer
with Faust's `_getmany` and `getmany` methods, once as is and once with
`streams.offset_guard` installed, and reports the median time per record of each.
Records are in order on four partitions, so the guard takes its common path, which
delivers every record.

    taskset -c 0 .venv/bin/python -m bench.offset_guard_cost --records 200000 --passes 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from streams.offset_guard import OffsetGuard

RAW_TOPIC = "webhooks.raw"
PARTITIONS = 4


class TopicPartition(NamedTuple):
    topic: str
    partition: int


@dataclass
class Record:
    offset: int


class BatchConsumer:
    """A consumer whose every fetch returns the same batch, with the methods the guard wraps."""

    def __init__(self, batch: list[tuple[TopicPartition, Record]]) -> None:
        self.batch = batch
        self._read_offset: dict[Any, int | None] = {}
        self._acked_index: dict[Any, set[int]] = {}
        self._committed_offset: dict[Any, int | None] = {}

    async def _getmany(self, active_partitions: Any, timeout: float) -> list[Any]:
        return self.batch

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        for item in await self._getmany(None, timeout):
            yield item

    async def perform_seek(self) -> None:
        """Do nothing: the batch starts at offset 0 of each partition."""

    async def seek_wait(self, partitions: Any) -> None:
        """Do nothing: the records are in order, so the guard never seeks."""


def make_batch(records: int) -> list[tuple[TopicPartition, Record]]:
    """Return RECORDS records spread in turn over the partitions, in offset order."""
    partitions = [TopicPartition(RAW_TOPIC, number) for number in range(PARTITIONS)]
    return [
        (partitions[index % PARTITIONS], Record(index // PARTITIONS)) for index in range(records)
    ]


async def drain(consumer: BatchConsumer) -> int:
    """Read one batch through the consumer's getmany and return the number of records."""
    count = 0
    async for _ in consumer.getmany(timeout=1.0):
        count += 1
    return count


async def measure(records: int, passes: int) -> dict[str, float]:
    """Return the median µs per record without and with the guard, over PASSES passes each.

    Raises:
        RuntimeError: a pass delivered fewer records than it read.
    """
    batch = make_batch(records)
    timings: dict[str, list[float]] = {"without guard": [], "with guard": []}
    for _ in range(passes):
        for name in timings:
            consumer = BatchConsumer(batch)
            if name == "with guard":
                guard = OffsetGuard(consumer, RAW_TOPIC)
                guard.install()
                guard.tracker.reset({tp: 0 for tp, _ in batch[:PARTITIONS]})
            started = time.perf_counter()
            delivered = await drain(consumer)
            elapsed = time.perf_counter() - started
            if delivered != records:
                raise RuntimeError(f"{name}: delivered {delivered} of {records} records")
            timings[name].append(elapsed / records * 1e6)
    return {name: statistics.median(values) for name, values in timings.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, measure and print the medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.offset_guard_cost", description=__doc__)
    parser.add_argument("--records", type=int, default=200_000, help="records per pass")
    parser.add_argument("--passes", type=int, default=7, help="passes without and with the guard")
    arguments = parser.parse_args(argv)
    medians = asyncio.run(measure(arguments.records, arguments.passes))
    for name, value in medians.items():
        print(f"{name}: {value:.2f} µs per record")


if __name__ == "__main__":
    main()
