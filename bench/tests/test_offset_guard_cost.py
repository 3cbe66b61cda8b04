"""Tests of bench.offset_guard_cost: both sides drain every record."""

from __future__ import annotations

import asyncio

from bench.offset_guard_cost import PARTITIONS, make_batch, measure


def test_batch_is_in_offset_order():
    batch = make_batch(12)

    offsets = [record.offset for tp, record in batch if tp.partition == 1]
    assert offsets == [0, 1, 2]
    assert len({tp for tp, _ in batch}) == PARTITIONS


def test_measure_times_both_sides():
    medians = asyncio.run(measure(records=400, passes=2))

    assert set(medians) == {"without guard", "with guard"}
    assert medians["without guard"] > 0
    assert medians["with guard"] > 0
