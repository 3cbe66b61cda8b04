"""Unit tests of streams.router.Router.process: the decision for one raw record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hookline import records
from hookline.records import Delivery
from streams.dedupe import Deduplicator, SeenEntry
from streams.router import Router
from streams.rules import load_rules

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CHANGELOG = "router-test-dedupe-changelog"
RULES_TOML = """
[[route]]
source = "stripe"
type = "payment_intent.*"
topics = ["events.stripe.payments"]

[[route]]
source = "*"
type = "*.deleted"
topics = ["events.deletions"]
"""


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START.timestamp())


@pytest.fixture
def table() -> dict[bytes, bytes]:
    return {}


@pytest.fixture
def router(tmp_path: Path, table, clock) -> Router:
    rules_path = tmp_path / "routes.toml"
    rules_path.write_text(RULES_TOML)
    rules = load_rules(
        rules_path, default_topic_template="events.{source}", unrouted_topic="webhooks.unrouted"
    )
    deduplicator = Deduplicator(table, 3600.0, sweep_interval_seconds=60.0, clock=clock)
    return Router(rules, deduplicator, "webhooks.deadletter", changelog_topic=CHANGELOG)


def delivery(
    event_id: str | None = "evt_1",
    event_type: str | None = "payment_intent.succeeded",
    receipt: str = "receipt-1",
    received_at: datetime = START,
) -> Delivery:
    return Delivery(
        receipt_id=receipt,
        source="stripe",
        received_at=received_at,
        body=b'{"id": "evt_1", "object": "event"}',
        content_type="application/json",
        event_id=event_id,
        event_type=event_type,
    )


def process(router: Router, item: Delivery, partition: int = 0):
    return router.process(item.key, item.body, item.kafka_headers(), partition)


def test_process_routes_cloudevent(router):
    item = delivery()

    outbound = process(router, item, partition=3)

    changelog, routed = outbound
    assert changelog.topic == CHANGELOG
    assert changelog.key == b"stripe:evt_1"
    assert changelog.partition == 3
    assert SeenEntry.decode(changelog.value) == SeenEntry(START.timestamp(), 3)
    assert routed.topic == "events.stripe.payments"
    assert routed.key == item.key
    assert routed.value == item.body
    assert routed.partition is None
    headers = dict(routed.headers)
    assert headers["ce_id"] == b"evt_1"
    assert headers["ce_type"] == b"payment_intent.succeeded"
    assert headers["ce_source"] == b"/hookline/sources/stripe"
    assert headers["hookline_receipt_id"] == b"receipt-1"
    assert router.counts.routed == 1


def test_process_fans_out(router):
    outbound = process(router, delivery(event_type="payment_intent.deleted"))

    assert [record.topic for record in outbound[1:]] == [
        "events.stripe.payments",
        "events.deletions",
    ]


def test_process_default_topic(router):
    outbound = process(router, delivery(event_type="invoice.paid"))

    assert [record.topic for record in outbound] == [CHANGELOG, "events.stripe"]


def test_process_drops_repeat(router):
    process(router, delivery(receipt="receipt-1"))

    repeat = delivery(receipt="receipt-2", received_at=START + timedelta(seconds=5))
    assert process(router, repeat) == []
    assert router.counts.repeats == 1
    assert router.counts.routed == 1


def test_process_logs_repeat_with_first_delivery(router, caplog):
    process(router, delivery(receipt="receipt-1"), partition=2)
    repeat = delivery(receipt="receipt-2", received_at=START + timedelta(seconds=5))

    with caplog.at_level("DEBUG", logger="streams.router"):
        process(router, repeat, partition=2)

    [line] = [r.getMessage() for r in caplog.records if r.name == "streams.router"]
    assert "event evt_1 (receipt receipt-2" in line
    assert f"received {START.timestamp() + 5:.6f}, partition 2" in line
    assert f"first delivery received {START.timestamp():.6f} on partition 2" in line


def test_process_without_event_id_never_repeat(router, table):
    first = process(router, delivery(event_id=None, receipt="receipt-1"))
    second = process(router, delivery(event_id=None, receipt="receipt-2"))

    assert [record.topic for record in first] == ["events.stripe.payments"]
    assert [record.topic for record in second] == ["events.stripe.payments"]
    assert dict(second[0].headers)["ce_id"] == b"receipt-2"
    assert table == {}


def test_process_unknown_type_unrouted_unchanged(router):
    item = delivery(event_type=None)

    outbound = process(router, item)

    unrouted = outbound[-1]
    assert unrouted.topic == "webhooks.unrouted"
    assert unrouted.key == item.key
    assert unrouted.value == item.body
    assert unrouted.headers == item.kafka_headers()
    assert router.counts.unrouted == 1


def test_process_unknown_type_still_deduplicated(router):
    process(router, delivery(event_type=None, receipt="receipt-1"))

    assert process(router, delivery(event_type=None, receipt="receipt-2")) == []


def test_process_missing_header_dead_lettered(router, table):
    item = delivery()
    headers = [(n, v) for n, v in item.kafka_headers() if n != records.RECEIPT_ID]

    outbound = router.process(item.key, item.body, headers, 0)

    assert len(outbound) == 1
    dead = outbound[0]
    assert dead.topic == "webhooks.deadletter"
    assert dead.key == item.key
    assert dead.value == item.body
    assert dead.headers[:-1] == headers
    assert dead.headers[-1] == (
        "hookline_dlq_reason",
        b"header hookline-receipt-id is missing or empty",
    )
    assert table == {}
    assert router.counts.dead_lettered == 1


def test_process_sweep_changes_come_first(router, table, clock):
    process(router, delivery(event_id="old", receipt="receipt-1"))
    clock.now = START.timestamp() + 3600 + 61

    later = START + timedelta(seconds=3600 + 61)
    outbound = process(router, delivery(event_id="new", receipt="receipt-2", received_at=later))

    assert [(r.topic, r.key, r.value is None) for r in outbound] == [
        (CHANGELOG, b"stripe:old", True),
        (CHANGELOG, b"stripe:new", False),
        ("events.stripe.payments", b"stripe:new", False),
    ]
    assert list(table) == [b"stripe:new"]
