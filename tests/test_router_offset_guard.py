"""Tests of the guard that keeps Faust from skipping raw offsets.

The tracker tests feed offsets and fetch numbers directly. The guard tests
use a consumer with Faust's method names whose fetch can be held open, so a
seek can happen while a fetch is in flight, which is the order that let
Faust take real records as a gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest

from streams.offset_guard import OffsetTracker, Verdict, guard_offsets, unprocessed_offsets

RAW = "webhooks.raw"


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class Message:
    offset: int


RAW_0 = TP(RAW, 0)
RAW_1 = TP(RAW, 1)
CHANGELOG_0 = TP("router-dedupe-changelog", 0)


def test_unprocessed_offsets_skip_acked_and_committed() -> None:
    assert unprocessed_offsets(10, 16, acked={12, 14}, committed=11) == [11, 13, 15]
    assert unprocessed_offsets(10, 13, acked={10, 11, 12}, committed=None) == []
    assert unprocessed_offsets(10, 13, acked=set(), committed=20) == []


def test_tracker_delivers_consecutive_offsets() -> None:
    tracker = OffsetTracker()
    tracker.reset({RAW_0: 10})
    fetch = tracker.fetch_started()

    verdicts = [tracker.check(RAW_0, offset, fetch) for offset in (10, 11, 12)]

    assert verdicts == [Verdict.DELIVER] * 3
    assert tracker.expected(RAW_0) == 13


def test_tracker_unknown_position_takes_first_offset() -> None:
    tracker = OffsetTracker()
    fetch = tracker.fetch_started()

    assert tracker.check(RAW_0, 40, fetch) is Verdict.DELIVER
    assert tracker.expected(RAW_0) == 41


def test_tracker_rewinds_batch_fetched_before_seek() -> None:
    tracker = OffsetTracker()
    stale_fetch = tracker.fetch_started()
    tracker.reset({RAW_0: 137})

    first = tracker.check(RAW_0, 150, stale_fetch)
    rest = [tracker.check(RAW_0, offset, stale_fetch) for offset in (151, 152)]

    assert first is Verdict.REWIND
    assert rest == [Verdict.DROP, Verdict.DROP]
    assert tracker.expected(RAW_0) == 137
    assert tracker.rewinds == 1
    assert tracker.real_gaps == 0


def test_tracker_delivers_after_rewind_seek() -> None:
    tracker = OffsetTracker()
    stale_fetch = tracker.fetch_started()
    tracker.reset({RAW_0: 137})
    tracker.check(RAW_0, 150, stale_fetch)
    tracker.record_seek(RAW_0, 137)
    fresh_fetch = tracker.fetch_started()

    verdicts = [tracker.check(RAW_0, offset, fresh_fetch) for offset in (137, 138)]

    assert verdicts == [Verdict.DELIVER, Verdict.DELIVER]
    assert tracker.expected(RAW_0) == 139


def test_tracker_accepts_skip_in_fresh_fetch() -> None:
    tracker = OffsetTracker()
    tracker.reset({RAW_0: 5})
    fetch = tracker.fetch_started()
    tracker.check(RAW_0, 5, fetch)

    verdict = tracker.check(RAW_0, 9, fetch)

    assert verdict is Verdict.DELIVER
    assert tracker.expected(RAW_0) == 10
    assert tracker.real_gaps == 1
    assert tracker.rewinds == 0


def test_tracker_skip_over_acked_offsets() -> None:
    tracker = OffsetTracker()
    stale_fetch = tracker.fetch_started()
    tracker.reset({RAW_0: 157})

    verdict = tracker.check(RAW_0, 160, stale_fetch, acked={157, 158, 159})

    assert verdict is Verdict.DELIVER
    assert tracker.expected(RAW_0) == 161
    assert tracker.rewinds == 0


def test_tracker_rewinds_to_first_unacked() -> None:
    tracker = OffsetTracker()
    stale_fetch = tracker.fetch_started()
    tracker.reset({RAW_0: 157})

    verdict = tracker.check(RAW_0, 160, stale_fetch, acked={157})

    assert verdict is Verdict.REWIND
    assert tracker.expected(RAW_0) == 158


def test_tracker_skip_below_commit_delivers() -> None:
    tracker = OffsetTracker()
    stale_fetch = tracker.fetch_started()
    tracker.reset({RAW_0: 157})

    verdict = tracker.check(RAW_0, 160, stale_fetch, acked=set(), committed=160)

    assert verdict is Verdict.DELIVER
    assert tracker.expected(RAW_0) == 161
    assert tracker.rewinds == 0


def test_tracker_retries_rewind_until_seek_succeeds() -> None:
    tracker = OffsetTracker()
    stale_fetch = tracker.fetch_started()
    tracker.reset({RAW_0: 20})
    tracker.check(RAW_0, 30, stale_fetch)
    # No record_seek() call: the seek back failed.
    next_fetch = tracker.fetch_started()

    verdict = tracker.check(RAW_0, 31, next_fetch)

    assert verdict is Verdict.REWIND
    assert tracker.real_gaps == 0
    assert tracker.expected(RAW_0) == 20


def test_tracker_delivers_record_read_again() -> None:
    tracker = OffsetTracker()
    tracker.reset({RAW_0: 50})
    fetch = tracker.fetch_started()
    tracker.check(RAW_0, 50, fetch)
    tracker.check(RAW_0, 51, fetch)

    verdict = tracker.check(RAW_0, 50, fetch)

    assert verdict is Verdict.DELIVER
    assert tracker.expected(RAW_0) == 52


def test_tracker_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    stale_fetch = tracker.fetch_started()
    tracker.reset({RAW_0: 0, RAW_1: 100})

    assert tracker.check(RAW_0, 0, stale_fetch) is Verdict.DELIVER
    assert tracker.check(RAW_1, 120, stale_fetch) is Verdict.REWIND
    assert tracker.check(RAW_0, 1, stale_fetch) is Verdict.DELIVER


def test_tracker_reset_forgets_unassigned_partitions() -> None:
    tracker = OffsetTracker()
    tracker.reset({RAW_0: 3, RAW_1: 4})

    tracker.reset({RAW_1: 8})

    assert tracker.expected(RAW_0) is None
    assert tracker.expected(RAW_1) == 8


class HeldFetchConsumer:
    """A consumer with the Faust methods the guard wraps, and fetches that can be held.

    Each `_getmany` call returns the next batch queued with `queue_batch`.
    A batch queued with a gate waits until the gate is set, so a test can
    seek while that fetch is in flight.
    """

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.earliest: dict[TP, int] = {}
        self._read_offset: dict[TP, int | None] = {}
        self._acked_index: dict[TP, set[int]] = {}
        self._committed_offset: dict[TP, int | None] = {}
        self.fail_earliest = False
        self.earliest_gate: asyncio.Event | None = None
        self.seeks: list[dict[TP, int]] = []
        self.fail_seeks = False
        self._batches: asyncio.Queue[tuple[asyncio.Event | None, list[tuple[TP, int]]]] = (
            asyncio.Queue()
        )

    def queue_batch(self, records: list[tuple[TP, int]], gate: asyncio.Event | None = None) -> None:
        self._batches.put_nowait((gate, records))

    async def _getmany(self, active_partitions: Any, timeout: float) -> list[tuple[TP, int]]:
        gate, records = await self._batches.get()
        if gate is not None:
            await gate.wait()
        return records

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for tp, offset in await self._getmany(None, timeout):
            yield tp, Message(offset)

    def assignment(self) -> set[TP]:
        return set(self.committed)

    async def perform_seek(self) -> None:
        self._read_offset.update(self.committed)
        self._committed_offset.update(self.committed)

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        if self.fail_seeks:
            raise RuntimeError("partition is not assigned")
        self.seeks.append(dict(partitions))
        self._read_offset.update(partitions)

    async def earliest_offsets(self, *partitions: TP) -> dict[TP, int]:
        if self.earliest_gate is not None:
            await self.earliest_gate.wait()
        if self.fail_earliest:
            raise RuntimeError("request timed out")
        return {tp: self.earliest.get(tp, 0) for tp in partitions}


async def delivered_offsets(consumer: HeldFetchConsumer) -> list[tuple[TP, int]]:
    return [(tp, message.offset) async for tp, message in consumer.getmany(timeout=1.0)]


async def deliver_across_seek(
    consumer: HeldFetchConsumer, records: list[tuple[TP, int]]
) -> list[tuple[TP, int]]:
    """Fetch RECORDS, seek to committed offsets while that fetch is held, then deliver."""
    gate = asyncio.Event()
    consumer.queue_batch(records, gate)
    in_flight = asyncio.create_task(delivered_offsets(consumer))
    await asyncio.sleep(0)
    await consumer.perform_seek()
    gate.set()
    return await in_flight


async def test_guard_drops_batch_fetched_across_seek() -> None:
    consumer = HeldFetchConsumer({RAW_0: 137})
    guard_offsets(consumer, RAW)

    delivered = await deliver_across_seek(consumer, [(RAW_0, 150), (RAW_0, 151), (CHANGELOG_0, 7)])

    assert delivered == [(CHANGELOG_0, 7)]
    assert consumer.seeks == [{RAW_0: 137}]


async def test_guard_delivers_refetched_records_after_rewind() -> None:
    consumer = HeldFetchConsumer({RAW_0: 137})
    guard_offsets(consumer, RAW)

    await deliver_across_seek(consumer, [(RAW_0, 150)])

    consumer.queue_batch([(RAW_0, 137), (RAW_0, 138)])
    delivered = await delivered_offsets(consumer)

    assert delivered == [(RAW_0, 137), (RAW_0, 138)]


async def test_guard_passes_real_gap(caplog: pytest.LogCaptureFixture) -> None:
    consumer = HeldFetchConsumer({RAW_0: 10})
    guard = guard_offsets(consumer, RAW)
    await consumer.perform_seek()
    consumer.queue_batch([(RAW_0, 10), (RAW_0, 14)])

    with caplog.at_level(logging.WARNING, logger="streams.offset_guard"):
        delivered = await delivered_offsets(consumer)

    assert delivered == [(RAW_0, 10), (RAW_0, 14)]
    assert consumer.seeks == []
    assert guard.tracker.real_gaps == 1
    assert "No records at offsets 11 to 13" in caplog.text


async def test_guard_starts_uncommitted_partition_at_earliest() -> None:
    consumer = HeldFetchConsumer({RAW_0: None})
    consumer.earliest[RAW_0] = 4
    guard = guard_offsets(consumer, RAW)

    delivered = await deliver_across_seek(consumer, [(RAW_0, 101)])

    assert delivered == []
    assert consumer.seeks[0] == {RAW_0: 4}
    assert guard.tracker.expected(RAW_0) == 4


async def test_guard_uncommitted_start_skips_acked() -> None:
    consumer = HeldFetchConsumer({RAW_0: None})
    consumer.earliest[RAW_0] = 0
    consumer._acked_index[RAW_0] = {0, 1, 2}
    guard_offsets(consumer, RAW)

    await consumer.perform_seek()

    assert consumer.seeks == [{RAW_0: 3}]


async def test_guard_survives_failed_earliest_offsets(caplog: pytest.LogCaptureFixture) -> None:
    consumer = HeldFetchConsumer({RAW_0: 9, RAW_1: None})
    consumer.fail_earliest = True
    guard = guard_offsets(consumer, RAW)

    with caplog.at_level(logging.ERROR, logger="streams.offset_guard"):
        await consumer.perform_seek()

    assert guard.tracker.expected(RAW_0) == 9
    assert guard.tracker.expected(RAW_1) is None
    assert consumer.seeks == []
    assert "Reading the first offsets of webhooks.raw[1] failed" in caplog.text


async def test_guard_keeps_dropping_when_seek_fails(caplog: pytest.LogCaptureFixture) -> None:
    consumer = HeldFetchConsumer({RAW_0: 20})
    guard = guard_offsets(consumer, RAW)
    consumer.fail_seeks = True

    with caplog.at_level(logging.ERROR, logger="streams.offset_guard"):
        first = await deliver_across_seek(consumer, [(RAW_0, 30)])
        consumer.queue_batch([(RAW_0, 31)])
        second = await delivered_offsets(consumer)

    assert first == []
    assert second == []
    assert guard.tracker.rewinds == 2
    assert guard.tracker.real_gaps == 0
    assert "Seeking webhooks.raw[0] to 20 failed" in caplog.text


async def test_guard_tracks_only_assigned_partitions() -> None:
    consumer = HeldFetchConsumer({RAW_0: 5})
    consumer._read_offset[RAW_1] = None
    guard = guard_offsets(consumer, RAW)

    await consumer.perform_seek()

    assert guard.tracker.expected(RAW_0) == 5
    assert RAW_1 not in guard.tracker.partitions


async def test_guard_reads_acked_offsets_from_consumer() -> None:
    consumer = HeldFetchConsumer({RAW_0: 137})
    guard_offsets(consumer, RAW)
    consumer._acked_index[RAW_0] = {137, 138}

    delivered = await deliver_across_seek(consumer, [(RAW_0, 140), (RAW_0, 141)])

    assert delivered == []
    assert consumer.seeks == [{RAW_0: 139}]


async def test_guard_holds_uncommitted_partition_until_sought() -> None:
    consumer = HeldFetchConsumer({RAW_0: None, RAW_1: 30})
    consumer.earliest[RAW_0] = 0
    consumer.earliest_gate = asyncio.Event()
    guard_offsets(consumer, RAW)
    seek = asyncio.create_task(consumer.perform_seek())
    await asyncio.sleep(0)

    consumer.queue_batch([(RAW_0, 12), (RAW_1, 30)])
    delivered = await delivered_offsets(consumer)
    consumer.earliest_gate.set()
    await seek

    assert delivered == [(RAW_1, 30)]
    assert consumer.seeks == [{RAW_0: 0}]
