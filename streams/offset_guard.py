"""Keeping Faust from committing past raw records that the router never read.

faust-streaming 0.15.3 assumes that offsets missing between two records of a
partition do not exist, as in a compacted topic. `Consumer._drain_messages`
adds the missing range as a gap (`Consumer._add_gap`), commits past it as if
processed, and drops the records of that range if they arrive later, because
their offsets lie below the last read offset. On the raw topic this lost
events: after a rebalance or a restart Faust sometimes handed the router a
record several offsets past the committed offset it had just sought to. The
likely source is a batch fetched before that seek and delivered after it.

`OffsetGuard` sits between Faust's fetch and its drain loop, in
`Consumer.getmany`. For each partition of the guarded topic it tracks the
next offset the router should see. A record past that offset passes only if
the router has acknowledged every skipped offset, which happens when Faust
seeks to the committed offset after the router processed records during
table recovery but before a commit. Otherwise the guard drops the record
before Faust can take the range as a gap, and seeks the partition back to
the first offset not acknowledged, so the skipped records are fetched again.

A fetch that starts after the latest seek of a partition and still skips
offsets shows a real gap, such as the control records of a transaction or
records removed by retention. The guard lets that record through, and Faust
then commits past the gap as it would without the guard.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


def unprocessed_offsets(
    start: int, end: int, acked: Collection[int], committed: int | None
) -> list[int]:
    """Return the offsets from START up to END, excluded, that the router has not processed.

    ACKED contains the offsets the router has acknowledged but not committed yet, and
    offsets below COMMITTED, the last committed offset, are processed as well.
    """
    return [offset for offset in range(max(start, committed or 0), end) if offset not in acked]


class Verdict(enum.Enum):
    """Action of the guard on one fetched record."""

    DELIVER = "deliver"
    # Drop the record and seek its partition back to the expected offset.
    REWIND = "rewind"
    # Drop the record, because a seek back for its batch was already made.
    DROP = "drop"


@dataclass
class _PartitionState:
    """Guard state of one partition."""

    # Next offset the router should read, or None when not known yet.
    expected: int | None = None
    # Number of the latest fetch that started before the partition's latest
    # seek. Records of that fetch or an earlier one may come from the old position.
    seek_fetch: int = -1
    # True from a rewind until its seek succeeds. Until then no skip is taken
    # as a real gap, because the position of the partition is not known.
    seek_pending: bool = False
    # Number of the latest fetch whose records caused a rewind.
    rewound_fetch: int | None = None
    # True while the start of a partition without a committed offset is
    # requested. Its records are dropped until the guard seeks it there.
    holding: bool = False


@dataclass
class OffsetTracker:
    """Expected next offset per partition, and the verdict on each fetched record.

    Fetches are numbered in the order they start. `fetch_started` returns the
    next number, and `check` takes the number of the fetch that returned the
    record.
    """

    partitions: dict[Any, _PartitionState] = field(default_factory=dict)
    fetches_started: int = 0
    rewinds: int = 0
    real_gaps: int = 0

    def fetch_started(self) -> int:
        """Count a fetch that starts now and return its number."""
        self.fetches_started += 1
        return self.fetches_started

    def reset(self, offsets: Mapping[Any, int | None]) -> None:
        """Replace all partitions with OFFSETS, the positions a seek to committed set.

        Partitions missing from OFFSETS are no longer assigned and are forgotten.
        """
        self.partitions = {}
        for tp, offset in offsets.items():
            self.record_seek(tp, offset)

    def record_seek(self, tp: Any, offset: int | None) -> None:
        """Record that partition TP was sought to OFFSET, None meaning unknown."""
        state = self.partitions.setdefault(tp, _PartitionState())
        state.expected = offset
        state.seek_fetch = self.fetches_started
        state.seek_pending = False
        state.holding = False

    def check(
        self,
        tp: Any,
        offset: int,
        fetch: int,
        acked: Collection[int] = frozenset(),
        committed: int | None = None,
    ) -> Verdict:
        """Return the verdict on the record at OFFSET of TP returned by fetch number FETCH.

        ACKED contains the offsets of TP that the router has processed and
        acknowledged but that are not committed yet, and COMMITTED is the
        offset the worker committed last, if known.
        """
        state = self.partitions.setdefault(tp, _PartitionState())
        expected = state.expected

        if state.holding:
            return Verdict.DROP
        if expected is None or offset == expected:
            state.expected = offset + 1
            return Verdict.DELIVER
        if offset < expected:
            # A record read again. Faust drops it or hands it over again,
            # and the deduplication table drops the repeat.
            return Verdict.DELIVER

        # A commit after the latest seek removed its offsets from ACKED, so
        # COMMITTED counts too.
        unprocessed = unprocessed_offsets(expected, offset, acked, committed)
        if not unprocessed:
            # The router processed the skipped records already: a seek to the
            # committed offset came after it read them but before a commit.
            state.expected = offset + 1
            return Verdict.DELIVER

        if fetch > state.seek_fetch and not state.seek_pending:
            # This fetch started after the latest seek and still skipped
            # offsets, so the broker has no records there.
            self.real_gaps += 1
            logger.warning(
                "No records at offsets %d to %d of %s[%d], so the router continues at %d",
                expected,
                offset - 1,
                tp.topic,
                tp.partition,
                offset,
            )
            state.expected = offset + 1
            return Verdict.DELIVER

        if state.rewound_fetch == fetch:
            # The rest of a batch that caused a rewind comes from the same
            # old position. A failed seek is retried with the next batch.
            return Verdict.DROP

        # NOTE: records between FIRST_UNACKED and OFFSET that were
        # acknowledged, or that the agent is still processing, are routed
        # again. The deduplication table drops them unless they lack a
        # provider event id.
        first_unacked = unprocessed[0]
        state.expected = first_unacked
        state.rewound_fetch = fetch
        state.seek_pending = True
        self.rewinds += 1
        logger.warning(
            "Fetched %s[%d] at offset %d while the router has not processed offset %d, "
            "probably from before the latest seek, so the guard drops the batch and "
            "seeks back to %d",
            tp.topic,
            tp.partition,
            offset,
            first_unacked,
            first_unacked,
        )
        return Verdict.REWIND

    def hold(self, tp: Any) -> None:
        """Drop the records of TP until `seek_started` or `record_seek` gives its position."""
        state = self.partitions.setdefault(tp, _PartitionState())
        state.expected = None
        state.holding = True

    def seek_started(self, tp: Any, offset: int) -> None:
        """Record that a seek of TP to OFFSET started.

        No skip counts as a real gap until the seek ends.
        """
        state = self.partitions.setdefault(tp, _PartitionState())
        state.expected = offset
        state.seek_pending = True
        state.holding = False

    def expected(self, tp: Any) -> int | None:
        """Return the next offset of TP that the router should read."""
        state = self.partitions.get(tp)
        return None if state is None else state.expected


class OffsetGuard:
    """Guard the partitions of TOPIC in a Faust consumer against skipped offsets.

    `install` replaces the consumer's `_getmany`, `getmany`, `perform_seek` and
    `seek_wait` with wrappers that keep an `OffsetTracker` up to date. It must
    run before the consumer's fetcher starts, because the drain loop looks
    `getmany` up once.
    """

    def __init__(self, consumer: Any, topic: str) -> None:
        self.consumer = consumer
        self.topic = topic
        self.tracker = OffsetTracker()
        # Number of the fetch whose records `getmany` is delivering.
        self._latest_fetch = 0

    def install(self) -> None:
        """Wrap the consumer's fetch and seek methods."""
        consumer = self.consumer
        consumer._getmany = self._counting_fetch(consumer._getmany)
        consumer.getmany = self._guarded_getmany(consumer.getmany)
        consumer.perform_seek = self._tracked_perform_seek(consumer.perform_seek)
        consumer.seek_wait = self._tracked_seek_wait(consumer.seek_wait)

    def _counting_fetch(
        self, fetch: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def counting_fetch(*args: Any, **kwargs: Any) -> Any:
            number = self.tracker.fetch_started()
            records = await fetch(*args, **kwargs)
            self._latest_fetch = number
            return records

        return counting_fetch

    def _guarded_getmany(
        self, getmany: Callable[..., AsyncIterator[tuple[Any, Any]]]
    ) -> Callable[..., AsyncIterator[tuple[Any, Any]]]:
        async def guarded_getmany(*args: Any, **kwargs: Any) -> AsyncIterator[tuple[Any, Any]]:
            async for tp, message in getmany(*args, **kwargs):
                if tp.topic != self.topic:
                    yield tp, message
                    continue
                # Faust's getmany makes one fetch before it yields its first
                # record, so the latest fetch is the one these records came from.
                acked = self.consumer._acked_index.get(tp, frozenset())
                committed = self.consumer._committed_offset.get(tp)
                verdict = self.tracker.check(
                    tp, message.offset, self._latest_fetch, acked, committed
                )
                if verdict is Verdict.DELIVER:
                    yield tp, message
                elif verdict is Verdict.REWIND:
                    await self._seek_back(tp)

        return guarded_getmany

    async def _seek_back(self, tp: Any) -> None:
        offset = self.tracker.expected(tp)
        if offset is None:
            return
        # seek_wait also sets Faust's read offset, so the drain loop takes
        # the record at OFFSET as the next one. A partition revoked a moment
        # ago makes the seek fail, and then a seek to committed offsets resets it.
        await self._seek({tp: offset})

    def _tracked_perform_seek(
        self, perform_seek: Callable[[], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        async def tracked_perform_seek() -> None:
            await perform_seek()

            # perform_seek leaves the committed offset of each assigned
            # partition in _read_offset, or None where the group has none.
            # aiokafka 0.14 seeks only to a committed offset above 0, so a
            # partition without one stays wherever its last fetch left it.
            # The tracker is reset before the next await, so that no record
            # reaches the drain loop with the state from before the seek.
            read_offsets = self.consumer._read_offset
            positions: dict[Any, int | None] = {}
            uncommitted: list[Any] = []
            for tp in self.consumer.assignment():
                if tp.topic != self.topic:
                    continue
                committed = read_offsets.get(tp)
                positions[tp] = committed or None
                if not committed:
                    uncommitted.append(tp)
            self.tracker.reset(positions)
            if not uncommitted:
                return

            # The first-offset request waits behind the consumer's open fetch,
            # at most `streams.app.FETCH_MAX_WAIT_MS`.
            for tp in uncommitted:
                self.tracker.hold(tp)
            starts = await self._start_offsets(uncommitted)
            targets: dict[Any, int] = {}
            for tp in uncommitted:
                start = starts.get(tp)
                if start is None:
                    # Without its start the partition is read as Faust reads
                    # it without the guard.
                    self.tracker.record_seek(tp, None)
                    continue
                targets[tp] = self._first_unacked(tp, start)
                self.tracker.seek_started(tp, targets[tp])
            if targets:
                await self._seek(targets)

        return tracked_perform_seek

    def _first_unacked(self, tp: Any, offset: int) -> int:
        acked = self.consumer._acked_index.get(tp, ())
        while offset in acked:
            offset += 1
        return offset

    async def _start_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        """Return the first offset of each of PARTITIONS, or {} when the request fails.

        The router reads a partition without a committed offset from its first
        record (`consumer_auto_offset_reset` is "earliest").
        """
        if not partitions:
            return {}
        try:
            offsets: Mapping[Any, int] = await self.consumer.earliest_offsets(*partitions)
        except Exception:
            names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
            logger.exception("Reading the first offsets of %s failed", names)
            return {}
        return dict(offsets)

    async def _seek(self, offsets: Mapping[Any, int]) -> None:
        try:
            await self.consumer.seek_wait(offsets)
        except Exception:
            # The tracker keeps these partitions' seeks pending, so it drops
            # records past the expected offsets and seeks again on the next batch.
            targets = ", ".join(
                f"{tp.topic}[{tp.partition}] to {offset}" for tp, offset in offsets.items()
            )
            logger.exception("Seeking %s failed", targets)

    def _tracked_seek_wait(
        self, seek_wait: Callable[[Mapping[Any, int]], Awaitable[None]]
    ) -> Callable[[Mapping[Any, int]], Awaitable[None]]:
        async def tracked_seek_wait(partitions: Mapping[Any, int]) -> None:
            await seek_wait(partitions)
            for tp, offset in partitions.items():
                if tp.topic == self.topic:
                    self.tracker.record_seek(tp, offset)

        return tracked_seek_wait


def guard_offsets(consumer: Any, topic: str) -> OffsetGuard:
    """Install an `OffsetGuard` for TOPIC in CONSUMER and return it."""
    guard = OffsetGuard(consumer, topic)
    guard.install()
    return guard
