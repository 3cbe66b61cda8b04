"""Unit tests of streams.dedupe: repeats within the window, expiry and table changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.dedupe import Deduplicator, SeenEntry, TableChange, dedupe_key, sweep_interval
from streams.envelope import RawEvent

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
WINDOW = 3600.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_event(event_id: str | None, received_at: datetime = START, source: str = "stripe"):
    return RawEvent(
        key=f"{source}:{event_id}".encode(),
        value=b"{}",
        receipt_id=f"receipt-{event_id}-{received_at.timestamp()}",
        source=source,
        received_at=received_at,
        content_type="application/json",
        event_id=event_id,
        event_type="invoice.paid",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START.timestamp())


@pytest.fixture
def table() -> dict[bytes, bytes]:
    return {}


@pytest.fixture
def deduplicator(table, clock) -> Deduplicator:
    return Deduplicator(table, WINDOW, sweep_interval_seconds=60.0, clock=clock)


def test_dedupe_key_source_and_event_id():
    assert dedupe_key(make_event("evt_1")) == b"stripe:evt_1"
    assert dedupe_key(make_event("evt_1", source="github")) == b"github:evt_1"
    assert dedupe_key(make_event(None)) is None


def test_seen_entry_round_trip():
    entry = SeenEntry(1772366400.123456, 3)

    assert entry.encode() == b"1772366400.123456:3"
    assert SeenEntry.decode(entry.encode()) == entry


def test_is_repeat_first_delivery_stored(deduplicator, table):
    assert deduplicator.is_repeat(make_event("evt_1"), partition=2) is False

    assert table == {b"stripe:evt_1": SeenEntry(START.timestamp(), 2).encode()}
    assert deduplicator.take_changes() == [TableChange(b"stripe:evt_1", table[b"stripe:evt_1"], 2)]
    assert deduplicator.take_changes() == []


def test_is_repeat_within_window(deduplicator, table):
    deduplicator.is_repeat(make_event("evt_1"), partition=0)
    deduplicator.take_changes()

    later = START + timedelta(seconds=WINDOW)
    assert deduplicator.is_repeat(make_event("evt_1", later), partition=0) is True
    assert deduplicator.take_changes() == []
    assert table[b"stripe:evt_1"] == SeenEntry(START.timestamp(), 0).encode()


def test_is_repeat_after_window_starts_new_window(deduplicator, table):
    deduplicator.is_repeat(make_event("evt_1"), partition=0)

    later = START + timedelta(seconds=WINDOW + 1)
    assert deduplicator.is_repeat(make_event("evt_1", later), partition=0) is False
    assert table[b"stripe:evt_1"] == SeenEntry(later.timestamp(), 0).encode()
    assert len(deduplicator.take_changes()) == 2


def test_is_repeat_same_id_other_source(deduplicator):
    assert deduplicator.is_repeat(make_event("evt_1", source="stripe"), partition=0) is False
    assert deduplicator.is_repeat(make_event("evt_1", source="github"), partition=0) is False


def test_is_repeat_never_without_event_id(deduplicator, table):
    assert deduplicator.is_repeat(make_event(None), partition=0) is False
    assert deduplicator.is_repeat(make_event(None), partition=0) is False
    assert table == {}
    assert deduplicator.take_changes() == []


def test_is_repeat_unreadable_entry_overwritten(deduplicator, table):
    table[b"stripe:evt_1"] = b"garbage"

    assert deduplicator.is_repeat(make_event("evt_1"), partition=1) is False
    assert SeenEntry.decode(table[b"stripe:evt_1"]).partition == 1


def test_sweep_deletes_expired_entries_of_partition(deduplicator, table, clock):
    deduplicator.is_repeat(make_event("old", START), partition=0)
    deduplicator.is_repeat(make_event("other-partition", START), partition=1)
    deduplicator.is_repeat(make_event("recent", START + timedelta(seconds=1800)), partition=0)
    deduplicator.take_changes()

    clock.now = START.timestamp() + WINDOW + 1
    deleted = deduplicator.sweep(0)

    assert deleted == 1
    assert b"stripe:old" not in table
    assert b"stripe:recent" in table
    assert b"stripe:other-partition" in table
    assert deduplicator.take_changes() == [TableChange(b"stripe:old", None, 0)]


def test_sweep_rebuilds_order_from_table(table, clock):
    # Entries restored from the changelog are in the table but not in the queues.
    table[b"stripe:a"] = SeenEntry(START.timestamp() - 10, 0).encode()
    table[b"stripe:b"] = SeenEntry(START.timestamp(), 0).encode()
    table[b"stripe:c"] = SeenEntry(START.timestamp() - 10, 3).encode()
    deduplicator = Deduplicator(table, WINDOW, clock=clock)

    clock.now = START.timestamp() + WINDOW - 5
    assert deduplicator.sweep(0) == 1
    assert sorted(table) == [b"stripe:b", b"stripe:c"]

    clock.now = START.timestamp() + WINDOW + 5
    assert deduplicator.sweep(0) == 1
    assert sorted(table) == [b"stripe:c"]


def test_sweep_skips_rewritten_key(deduplicator, table, clock):
    deduplicator.is_repeat(make_event("evt_1", START), partition=0)
    renewed = START + timedelta(seconds=WINDOW + 10)
    clock.now = renewed.timestamp()
    deduplicator.is_repeat(make_event("evt_1", renewed), partition=0)
    deduplicator.take_changes()

    assert deduplicator.sweep(0) == 0
    assert table[b"stripe:evt_1"] == SeenEntry(renewed.timestamp(), 0).encode()


def test_maybe_sweep_once_per_interval(deduplicator, table, clock):
    deduplicator.is_repeat(make_event("evt_1", START), partition=0)
    deduplicator.is_repeat(make_event("evt_2", START + timedelta(seconds=1)), partition=0)

    clock.now = START.timestamp() + WINDOW + 0.5
    assert deduplicator.maybe_sweep(0) == 1
    assert list(table) == [b"stripe:evt_2"]

    # evt_2 has expired too, but the next sweep is due 60 s after the last one.
    clock.now = START.timestamp() + WINDOW + 30
    assert deduplicator.maybe_sweep(0) == 0
    assert list(table) == [b"stripe:evt_2"]

    clock.now = START.timestamp() + WINDOW + 61
    assert deduplicator.maybe_sweep(0) == 1
    assert table == {}


def test_forget_order_rebuilds_on_next_sweep(deduplicator, table, clock):
    deduplicator.is_repeat(make_event("evt_1", START), partition=0)
    deduplicator.forget_order()
    table[b"stripe:restored"] = SeenEntry(START.timestamp(), 0).encode()

    clock.now = START.timestamp() + WINDOW + 1
    assert deduplicator.maybe_sweep(0) == 2
    assert table == {}


def test_table_stays_bounded_under_steady_load(table, clock):
    deduplicator = Deduplicator(table, 100.0, sweep_interval_seconds=10.0, clock=clock)
    moment = START

    for index in range(2000):
        moment += timedelta(seconds=1)
        clock.now = moment.timestamp()
        deduplicator.maybe_sweep(0)
        deduplicator.is_repeat(make_event(f"evt_{index}", moment), partition=0)

    # One entry per second: the window plus one sweep interval at most.
    assert len(table) <= 100 + 10 + 1


def test_deduplicator_rejects_non_positive_window(table):
    with pytest.raises(ValueError, match="must be positive"):
        Deduplicator(table, 0)


@pytest.mark.parametrize(
    ("window", "expected"), [(5.0, 1.0), (100.0, 10.0), (7 * 24 * 3600.0, 60.0)]
)
def test_sweep_interval_bounds(window: float, expected: float):
    assert sweep_interval(window) == expected


def test_first_delivery_is_stored_entry(deduplicator):
    first = make_event("evt_1")
    assert deduplicator.first_delivery(first) is None

    deduplicator.is_repeat(first, 2)
    later = make_event("evt_1", START + timedelta(seconds=30))

    assert deduplicator.first_delivery(later) == SeenEntry(START.timestamp(), 2)
    assert deduplicator.first_delivery(make_event(None)) is None
