"""Dropping repeats of one provider event within the deduplication window.

Providers retry a webhook until they see a 2xx, so one event can reach
`webhooks.raw` several times, each with its own receipt id. The router keeps
the first delivery of each (source, provider event id) in a table that maps

    key   b"<source>:<event id>"
    value b"<first receive time, Unix seconds>:<raw partition>"

A later delivery of the same key whose receive time lies within
`router.dedupe_window_seconds` of the stored one is a repeat. A delivery after
the window has passed is routed again and starts a new window. Deliveries
without a provider event id are never deduplicated.

The key equals the key ingest gives the raw record, so every delivery of an
event lands on one raw partition, and one table partition (the changelog
partition of the same number) contains its entry.

Every write and delete is also kept as a `TableChange` until the caller takes
it with `take_changes`, so the router can produce it to the changelog topic in
the same transaction as the records it routes for the event.

Expiry: while processing a record of partition P, the router calls
`maybe_sweep(P)`, which at most once per sweep interval deletes P's entries
whose window has passed by wall-clock time. Sweeping inside the stream puts
the deletes in the transaction of a record that is about to be committed. A
timer outside the stream would open a transaction on a partition that may
receive no record to commit it, and the broker would abort it after the
transaction timeout. An idle partition is therefore not swept until its next
record, but it gains no entries while idle either.

A per-partition queue of (receive time, key) in write order finds expired
entries without scanning the table. The queue of a partition is rebuilt from
the table on its first sweep after a rebalance (`forget_order`), because
entries restored from the changelog are not in it.

A Faust windowed table was not used: its window bookkeeping lives only in
memory, so keys restored from the changelog after a restart are never
expired, and faust-streaming 0.15.3 marks its expiry code path as buggy
(`Table._del_old_keys`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, MutableMapping

import msgspec

from streams.envelope import RawEvent


class SeenEntry(msgspec.Struct, frozen=True):
    """Table value: when the first delivery was received and its raw partition."""

    first_received: float
    partition: int

    def encode(self) -> bytes:
        """Return the table value bytes."""
        return f"{self.first_received:.6f}:{self.partition}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> SeenEntry:
        """Parse table value bytes written by `encode`.

        Raises:
            ValueError: RAW is not in the `<seconds>:<partition>` form.
        """
        seconds, _, partition = raw.decode("ascii").partition(":")
        return cls(first_received=float(seconds), partition=int(partition))


class TableChange(msgspec.Struct, frozen=True):
    """A write (VALUE set) or delete (VALUE None) of KEY in table partition PARTITION."""

    key: bytes
    value: bytes | None
    partition: int


def dedupe_key(event: RawEvent) -> bytes | None:
    """Return the table key of EVENT, or None when it has no provider event id."""
    if not event.event_id:
        return None
    return f"{event.source}:{event.event_id}".encode()


def sweep_interval(window_seconds: float) -> float:
    """Return the default seconds between sweeps of a partition for a window."""
    return min(60.0, max(1.0, window_seconds / 10))


def _decode_or_none(raw: bytes | None) -> SeenEntry | None:
    if raw is None:
        return None
    try:
        return SeenEntry.decode(raw)
    except (UnicodeDecodeError, ValueError):
        return None


class Deduplicator:
    """Detects repeats with a table of first deliveries and expires old entries.

    TABLE is the local store of the Faust table in the router and a plain dict
    in unit tests. The deduplicator changes only TABLE, and the caller
    produces the changes it takes with `take_changes` to the changelog topic.
    """

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        window_seconds: float,
        *,
        sweep_interval_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_seconds <= 0:
            raise ValueError(f"deduplication window must be positive, got {window_seconds}")
        self.table = table
        self.window_seconds = window_seconds
        self.sweep_interval_seconds = (
            sweep_interval(window_seconds)
            if sweep_interval_seconds is None
            else sweep_interval_seconds
        )
        self.clock = clock
        self._changes: list[TableChange] = []
        # Per partition: (first receive time, key) in write order.
        self._order: dict[int, deque[tuple[float, bytes]]] = {}
        self._last_sweep: dict[int, float] = {}

    def is_repeat(self, event: RawEvent, partition: int) -> bool:
        """Return whether EVENT repeats a delivery seen within the window.

        Stores the delivery as the first one of its key when it is not a
        repeat. Events without a provider event id are never repeats.
        """
        key = dedupe_key(event)
        if key is None:
            return False

        received = event.received_at.timestamp()
        first = _decode_or_none(self.table.get(key))
        if first is not None and abs(received - first.first_received) <= self.window_seconds:
            return True

        value = SeenEntry(received, partition).encode()
        self.table[key] = value
        self._changes.append(TableChange(key, value, partition))
        order = self._order.get(partition)
        if order is not None:
            # The time as stored (microseconds), so `sweep` can compare it exactly.
            order.append((float(value.partition(b":")[0]), key))
        return False

    def first_delivery(self, event: RawEvent) -> SeenEntry | None:
        """Return the stored first delivery of EVENT's key, or None when there is none."""
        key = dedupe_key(event)
        return None if key is None else _decode_or_none(self.table.get(key))

    def maybe_sweep(self, partition: int) -> int:
        """Sweep PARTITION if its last sweep is a sweep interval ago; return entries deleted."""
        now = self.clock()
        last = self._last_sweep.get(partition)
        if last is not None and now - last < self.sweep_interval_seconds:
            return 0
        self._last_sweep[partition] = now
        return self.sweep(partition)

    def sweep(self, partition: int) -> int:
        """Delete the entries of PARTITION whose window has passed; return how many."""
        order = self._order.get(partition)
        if order is None:
            order = self._order[partition] = self._read_order(partition)

        cutoff = self.clock() - self.window_seconds
        deleted = 0
        while order and order[0][0] < cutoff:
            first_received, key = order.popleft()
            entry = _decode_or_none(self.table.get(key))
            # A newer delivery after the window rewrote the key, and its own
            # queue item expires it later.
            if entry is None or entry.first_received != first_received:
                continue
            del self.table[key]
            self._changes.append(TableChange(key, None, partition))
            deleted += 1
        return deleted

    def forget_order(self) -> None:
        """Drop the expiry queues, for example after a rebalance; sweeps rebuild them."""
        self._order.clear()
        self._last_sweep.clear()

    def take_changes(self) -> list[TableChange]:
        """Return the table changes made since the last call, oldest first, and forget them."""
        changes, self._changes = self._changes, []
        return changes

    def _read_order(self, partition: int) -> deque[tuple[float, bytes]]:
        items: list[tuple[float, bytes]] = []
        for key, stored in self.table.items():
            entry = _decode_or_none(stored)
            if entry is not None and entry.partition == partition:
                items.append((entry.first_received, key))
        items.sort()
        return deque(items)
