"""Integration tests of the router against the real Kafka broker.

Each test writes its own config and rules with topic names and an app id that
no other test uses, runs `python -m streams.worker` as a subprocess (as in
production), produces raw records the way ingest does and reads the routed
topics with isolation_level="read_committed".
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from hookline import records
from hookline.config import HooklineConfig, load_config
from hookline.records import Delivery, new_receipt_id
from streams.topics import ensure_topics, topic_names

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parent.parent
ROUTE_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
# After the expected records arrived, poll this long to catch extra copies.
QUIET_SECONDS = 3.0
# Bytes that a re-serialising router would change: key order, spacing,
# escaped and raw non-ASCII text.
PAYLOAD_TEMPLATE = '{"id": "%s",  "type":"%s", "note": "caf\\u00e9 — ünïcode", "n": 1.50}\n'


@dataclass
class RouterSetup:
    """Names, config file and worker process of one test's router."""

    suffix: str
    config_path: Path
    log_path: Path
    config: HooklineConfig
    process: subprocess.Popen[bytes] | None = None
    log_files: list = field(default_factory=list)

    @property
    def raw_topic(self) -> str:
        return self.config.kafka.raw_topic

    def topic(self, name: str) -> str:
        return f"{name}.{self.suffix}"

    def start(self, store: str = "memory://") -> None:
        log_file = self.log_path.open("ab")
        self.log_files.append(log_file)
        command = [sys.executable, "-m", "streams.worker", "--config", str(self.config_path)]
        self.process = subprocess.Popen(
            [*command, "--store", store],
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def stop(self) -> int:
        """Send SIGTERM, wait for the exit and return the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def write_setup(tmp_path: Path, bootstrap_servers: str) -> RouterSetup:
    suffix = uuid.uuid4().hex[:10]
    rules_path = tmp_path / "routes.toml"
    rules_path.write_text(
        f"""
[[route]]
source = "stripe"
type = "payment_intent.*"
topics = ["payments.{suffix}"]

[[route]]
source = "stripe"
type = "customer.subscription.*"
topics = ["subscriptions.{suffix}"]

[[route]]
source = "*"
type = "*.deleted"
topics = ["deletions.{suffix}"]
"""
    )
    config_path = tmp_path / "hookline.toml"
    config_path.write_text(
        f"""
[kafka]
bootstrap_servers = "{bootstrap_servers}"
raw_topic = "raw.{suffix}"
rejected_topic = "rejected.{suffix}"

[router]
app_id = "router-test-{suffix}"
rules_file = "{rules_path}"
data_dir = "{tmp_path / "router-data"}"
dedupe_window_seconds = 3600
default_topic_template = "events.{{source}}.{suffix}"
unrouted_topic = "unrouted.{suffix}"
dead_letter_topic = "deadletter.{suffix}"
web_port = 0

[sources.stripe]
scheme = "stripe"
secrets = ["whsec_test_only"]
"""
    )
    return RouterSetup(
        suffix=suffix,
        config_path=config_path,
        log_path=tmp_path / "router.log",
        config=load_config(config_path),
    )


@pytest.fixture
async def router_setup(kafka_broker, tmp_path: Path) -> AsyncIterator[RouterSetup]:
    setup = write_setup(tmp_path, kafka_broker.bootstrap_servers)
    await ensure_topics(setup.config)
    yield setup
    try:
        if setup.process is not None and setup.process.poll() is None:
            setup.stop()
    finally:
        for log_file in setup.log_files:
            log_file.close()


@pytest.fixture
async def raw_producer(kafka_broker) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers, enable_idempotence=True, acks="all"
    )
    await producer.start()
    yield producer
    await producer.stop()


def stripe_delivery(
    event_id: str | None, event_type: str | None, *, body: bytes | None = None
) -> Delivery:
    if body is None:
        body = (PAYLOAD_TEMPLATE % (event_id, event_type)).encode()
    return Delivery(
        receipt_id=new_receipt_id(),
        source="stripe",
        received_at=datetime.now(UTC),
        body=body,
        content_type="application/json; charset=utf-8",
        event_id=event_id,
        event_type=event_type,
        remote_addr="127.0.0.1",
        request_headers={"content-type": "application/json", "stripe-signature": "[redacted]"},
    )


async def send_raw(producer: AIOKafkaProducer, topic: str, delivery: Delivery) -> None:
    await producer.send_and_wait(
        topic, delivery.body, key=delivery.key, headers=delivery.kafka_headers()
    )


async def read_topics(
    bootstrap_servers: str,
    topics: list[str],
    expected: int,
    timeout: float = ROUTE_TIMEOUT_SECONDS,
) -> dict[str, list[ConsumerRecord]]:
    """Read committed records of TOPICS until EXPECTED arrived and QUIET_SECONDS passed."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    found: dict[str, list[ConsumerRecord]] = {topic: [] for topic in topics}
    deadline = time.monotonic() + timeout
    quiet_until: float | None = None
    try:
        while time.monotonic() < (quiet_until or deadline):
            batches = await consumer.getmany(timeout_ms=250)
            for partition, batch in batches.items():
                found[partition.topic].extend(batch)
            if quiet_until is None and sum(map(len, found.values())) >= expected:
                quiet_until = time.monotonic() + QUIET_SECONDS
    finally:
        await consumer.stop()
    return found


async def end_offset(bootstrap_servers: str, record: ConsumerRecord) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        partition = TopicPartition(record.topic, record.partition)
        return (await consumer.end_offsets([partition]))[partition]
    finally:
        await consumer.stop()


def receipt_ids(found: list[ConsumerRecord]) -> list[str]:
    return [dict(record.headers)["hookline_receipt_id"].decode() for record in found]


def assert_cloudevent(record: ConsumerRecord, delivery: Delivery) -> None:
    headers = dict(record.headers)
    assert len(headers) == len(record.headers), "a header name repeats"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == (delivery.event_id or delivery.receipt_id).encode()
    assert headers["ce_source"] == b"/hookline/sources/stripe"
    assert headers["ce_type"] == delivery.event_type.encode()
    assert headers["ce_time"] == records.format_time(delivery.received_at).encode()
    assert headers["content-type"] == b"application/json; charset=utf-8"
    assert headers["hookline_receipt_id"] == delivery.receipt_id.encode()
    assert record.key == delivery.key
    assert record.value == delivery.body


async def test_router_routes_each_event_once(router_setup: RouterSetup, raw_producer, kafka_broker):
    setup = router_setup
    payment = stripe_delivery("evt_payment", "payment_intent.succeeded")
    deleted = stripe_delivery("evt_sub_deleted", "customer.subscription.deleted")
    invoice = stripe_delivery("evt_invoice", "invoice.paid")
    payment_retry = dataclasses.replace(payment, receipt_id=new_receipt_id())
    no_event_id = stripe_delivery(None, "invoice.paid")
    unknown_type = stripe_delivery("evt_unknown", None, body=b"not json {")
    after_poison = stripe_delivery("evt_after_poison", "invoice.created")
    # Same key as after_poison, so both are on one partition and the poison comes first.
    poison_headers = [
        (name, value) for name, value in after_poison.kafka_headers() if name != records.RECEIPT_ID
    ]

    for delivery in (payment, deleted, invoice, payment_retry, no_event_id, unknown_type):
        await send_raw(raw_producer, setup.raw_topic, delivery)
    await raw_producer.send_and_wait(
        setup.raw_topic, b"poison body", key=after_poison.key, headers=poison_headers
    )
    await send_raw(raw_producer, setup.raw_topic, after_poison)
    setup.start()

    payments = setup.topic("payments")
    subscriptions = setup.topic("subscriptions")
    deletions = setup.topic("deletions")
    default = setup.topic("events.stripe")
    unrouted = setup.topic("unrouted")
    dead_letter = setup.topic("deadletter")
    found = await read_topics(
        kafka_broker.bootstrap_servers,
        [payments, subscriptions, deletions, default, unrouted, dead_letter],
        expected=8,
    )

    assert setup.process.poll() is None, setup.log_tail()
    assert receipt_ids(found[payments]) == [payment.receipt_id], setup.log_tail()
    assert_cloudevent(found[payments][0], payment)
    # A committed transaction ends with a control record, which takes the next
    # offset. A record produced outside a transaction has none after it.
    record = found[payments][0]
    assert await end_offset(kafka_broker.bootstrap_servers, record) == record.offset + 2
    assert receipt_ids(found[subscriptions]) == [deleted.receipt_id]
    assert_cloudevent(found[subscriptions][0], deleted)
    assert receipt_ids(found[deletions]) == [deleted.receipt_id]
    assert_cloudevent(found[deletions][0], deleted)
    assert sorted(receipt_ids(found[default])) == sorted(
        [invoice.receipt_id, no_event_id.receipt_id, after_poison.receipt_id]
    )
    for record in found[default]:
        delivery = {d.receipt_id: d for d in (invoice, no_event_id, after_poison)}[
            dict(record.headers)["hookline_receipt_id"].decode()
        ]
        assert_cloudevent(record, delivery)

    assert len(found[unrouted]) == 1
    unrouted_record = found[unrouted][0]
    assert unrouted_record.key == unknown_type.key
    assert unrouted_record.value == b"not json {"
    assert list(unrouted_record.headers) == unknown_type.kafka_headers()

    assert len(found[dead_letter]) == 1
    dead = found[dead_letter][0]
    assert dead.key == after_poison.key
    assert dead.value == b"poison body"
    assert list(dead.headers[:-1]) == poison_headers
    assert dead.headers[-1] == (
        "hookline_dlq_reason",
        b"header hookline-receipt-id is missing or empty",
    )

    assert setup.stop() == 0, setup.log_tail()


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_router_remembers_events_after_restart(
    router_setup: RouterSetup, raw_producer, kafka_broker, store: str
):
    if store == "rocksdb://":
        pytest.importorskip("rocksdict", reason="the rocksdb:// store needs rocksdict")
    setup = router_setup
    first = stripe_delivery("evt_restart", "invoice.paid")
    default = setup.topic("events.stripe")
    await send_raw(raw_producer, setup.raw_topic, first)
    setup.start(store)
    found = await read_topics(kafka_broker.bootstrap_servers, [default], expected=1)
    assert receipt_ids(found[default]) == [first.receipt_id], setup.log_tail()
    assert setup.stop() == 0, setup.log_tail()

    # The table comes back from its changelog, so the provider's retry is a repeat.
    retry = dataclasses.replace(first, receipt_id=new_receipt_id())
    marker = stripe_delivery("evt_after_restart", "invoice.paid")
    await send_raw(raw_producer, setup.raw_topic, retry)
    await send_raw(raw_producer, setup.raw_topic, marker)
    setup.start(store)
    found = await read_topics(kafka_broker.bootstrap_servers, [default], expected=2)

    assert receipt_ids(found[default]) == [first.receipt_id, marker.receipt_id], setup.log_tail()
    assert setup.stop() == 0, setup.log_tail()


async def test_router_stops_quickly_on_sigterm(router_setup: RouterSetup, kafka_broker):
    setup = router_setup
    setup.start()
    await wait_for_log(setup, "[^Worker]: Ready", ROUTE_TIMEOUT_SECONDS)

    started = time.monotonic()
    code = setup.stop()

    assert code == 0, setup.log_tail()
    assert time.monotonic() - started < 10.0
    assert "Router router-test-" in setup.log_tail()


async def wait_for_log(setup: RouterSetup, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in setup.log_path.read_text(errors="replace"):
            return
        assert setup.process.poll() is None, setup.log_tail()
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} not logged within {timeout} s:\n{setup.log_tail()}")


async def test_ensure_topics_creates_each_topic_once(kafka_broker, tmp_path: Path):
    setup = write_setup(tmp_path, kafka_broker.bootstrap_servers)
    expected = topic_names(setup.config)

    created = await ensure_topics(setup.config)
    created_again = await ensure_topics(setup.config)

    assert sorted(created) == sorted(expected)
    assert created_again == []
    assert setup.raw_topic in created
    assert setup.topic("events.stripe") in created
    assert setup.topic("deadletter") in created
    assert setup.topic("deletions") in created
