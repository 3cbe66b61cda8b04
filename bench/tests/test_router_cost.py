"""Tests of bench.router_cost: every timed event is routed, in both scopes."""

from __future__ import annotations

import asyncio

from bench.router_cost import PARTITIONS, SCOPES, make_messages, measure
from hookline import records
from hookline.config import load_config


def test_make_messages_raw_deliveries():
    messages = make_messages(load_config(), 8)

    assert [message.partition for message in messages] == [i % PARTITIONS for i in range(8)]
    assert len({message.key for message in messages}) == 8
    headers = dict(messages[0].headers)
    assert headers[records.SOURCE] == b"stripe"
    assert headers[records.EVENT_TYPE] == b"payment_intent.succeeded"
    assert records.EVENT_ID in headers
    assert messages[0].value.startswith(b"{")


def test_measure_times_every_scope():
    results = asyncio.run(measure(records=50, passes=2))

    assert set(results) == set(SCOPES)
    for values in results.values():
        assert len(values) == 2
        assert all(value > 0 for value in values)
