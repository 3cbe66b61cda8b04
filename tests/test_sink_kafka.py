"""Integration tests of the audit sink on the real broker and the embedded engine (chDB).

Each test has its own topics, consumer group and chDB folder. Tests that run
the sink in this process reach its data through `run_query`, which goes to the
sink's query endpoint. The SIGKILL test runs the sink as a child process with
the test-only hook `HOOKLINE_AUDIT_TEST_KILL_AFTER_INSERTS`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from clickhouse_connect.driver.exceptions import OperationalError
from prometheus_client import REGISTRY

from hookline.broker import LocalBroker
from hookline.config import HooklineConfig, load_config
from hookline.records import Delivery, new_receipt_id
from sinks.audit import AuditSink
from sinks.errors import QueryError
from sinks.faults import KILL_AFTER_INSERTS_ENV
from sinks.query import run_query
from sinks.store import AuditStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 4
WAIT_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, broker: LocalBroker, dsn: str | None = None, **audit: Any) -> Path:
    """Write a config with unique topics, group and chDB folder; return its path."""
    suffix = uuid.uuid4().hex[:10]
    settings: dict[str, Any] = {
        "dsn": dsn or f"chdb://{folder / 'clickhouse'}",
        "group_id": f"audit-test-{suffix}",
        "batch_max_rows": 50,
        "batch_max_seconds": 0.2,
        "query_port": free_port(),
    }
    settings.update(audit)
    lines = [
        "[kafka]",
        f'bootstrap_servers = "{broker.bootstrap_servers}"',
        f'raw_topic = "audit-raw-{suffix}"',
        f'rejected_topic = "audit-rejected-{suffix}"',
        "[audit]",
    ]
    for key, value in settings.items():
        lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    path = folder / f"hookline-{suffix}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def create_topics(config: HooklineConfig) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=config.kafka.bootstrap_servers)
    await admin.start()
    try:
        topics = [config.kafka.raw_topic, config.kafka.rejected_topic]
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in topics])
    finally:
        await admin.close()


def make_deliveries(count: int, *, rejected: bool = False) -> list[Delivery]:
    """Deliveries with varied sources, types, months and bodies that are not UTF-8."""
    deliveries = []
    start = datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)
    for index in range(count):
        body = f'{{"n":{index}}}'.encode() + bytes([0x80 + index % 64, 0xFF, 0x00])
        deliveries.append(
            Delivery(
                receipt_id=new_receipt_id(),
                source=("stripe", "github", "shopify")[index % 3],
                # Spans a month boundary, so batches split into one insert per month.
                received_at=start + timedelta(milliseconds=37 * index),
                body=body,
                content_type="application/json",
                event_id=f"evt_{index}" if not rejected else None,
                event_type=("charge.succeeded", "push")[index % 2] if not rejected else None,
                remote_addr="198.51.100.9",
                request_headers={"content-type": "application/json", "x-index": str(index)},
                status=401 if rejected else None,
                reason="no_matching_signature" if rejected else None,
            )
        )
    return deliveries


async def produce(config: HooklineConfig, topic: str, deliveries: list[Delivery]) -> None:
    """Produce DELIVERIES the way ingest does: idempotent, acks=all, key and headers."""
    producer = AIOKafkaProducer(
        bootstrap_servers=config.kafka.bootstrap_servers, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        for item in deliveries:
            await producer.send_and_wait(
                topic, item.body, key=item.key, headers=item.kafka_headers()
            )
    finally:
        await producer.stop()


async def produce_raw(
    config: HooklineConfig, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=config.kafka.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(config.kafka.raw_topic, value, headers=headers)
    finally:
        await producer.stop()


async def committed_offsets(config: HooklineConfig, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.kafka.bootstrap_servers,
        group_id=config.audit.group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


async def end_offsets(config: HooklineConfig, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=config.kafka.bootstrap_servers)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        offsets = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in offsets.items()}
    finally:
        await consumer.stop()


async def query(config: HooklineConfig, sql: str) -> list[tuple[Any, ...]]:
    _, rows = await asyncio.to_thread(run_query, config, sql)
    return rows


async def wait_for(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT_SECONDS
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def wait_for_count(
    config: HooklineConfig, table: str, expected: int, timeout: float = WAIT_SECONDS
) -> None:
    async def reached() -> bool:
        try:
            rows = await query(config, f"SELECT count() FROM {table}")
        except QueryError:
            # A sink process that is still starting has the folder open
            # but does not serve queries yet.
            return False
        return rows[0][0] >= expected

    await wait_for(reached, f"{expected} rows in {table}", timeout)


async def stored_bodies(config: HooklineConfig, table: str) -> dict[str, list[str]]:
    rows = await query(config, f"SELECT toString(receipt_id), hex(body) FROM {table}")
    stored: dict[str, list[str]] = {}
    for receipt_id, body_hex in rows:
        stored.setdefault(receipt_id, []).append(body_hex)
    return stored


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_sink_stores_each_record_once(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, kafka_broker))
    await create_topics(config)
    accepted = make_deliveries(120)
    rejected = make_deliveries(7, rejected=True)
    await produce(config, config.kafka.raw_topic, accepted)
    await produce(config, config.kafka.rejected_topic, rejected)
    await produce_raw(config, b"\xfenot a delivery", [("hookline-source", b"stripe")])

    async with AuditSink(config):
        await wait_for_count(config, "webhook_events", len(accepted) + 1)
        await wait_for_count(config, "webhook_rejections", len(rejected))
        events = await stored_bodies(config, "webhook_events")
        rejections = await query(
            config, "SELECT status, reason, body_size, hex(body) FROM webhook_rejections"
        )
        unparsed = await query(
            config,
            "SELECT source, hex(body), parse_error FROM webhook_events WHERE parse_error != ''",
        )
        months = await query(
            config,
            "SELECT DISTINCT toYYYYMM(received_at) FROM webhook_events "
            "WHERE parse_error = '' ORDER BY 1",
        )

    for item in accepted:
        assert events.get(item.receipt_id) == [item.body.hex().upper()], item.receipt_id
    assert len(events) == len(accepted) + 1
    assert len(rejections) == len(rejected)
    assert {(status, reason) for status, reason, _, _ in rejections} == {
        (401, "no_matching_signature")
    }
    assert sorted(body for _, _, _, body in rejections) == sorted(
        item.body.hex().upper() for item in rejected
    )
    assert unparsed == [("stripe", b"\xfenot a delivery".hex().upper(), unparsed[0][2])]
    assert "missing header" in unparsed[0][2]
    assert months == [(202401,), (202402,)]

    # Offsets are committed after the rows are stored.
    raw_end = await end_offsets(config, config.kafka.raw_topic)
    raw_committed = await committed_offsets(config, config.kafka.raw_topic)
    assert raw_committed == raw_end


async def test_sink_restart_no_duplicates(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, kafka_broker))
    await create_topics(config)
    first = make_deliveries(30)
    await produce(config, config.kafka.raw_topic, first)

    async with AuditSink(config):
        await wait_for_count(config, "webhook_events", len(first))

    second = make_deliveries(10)
    await produce(config, config.kafka.raw_topic, second)
    async with AuditSink(config):
        await wait_for_count(config, "webhook_events", len(first) + len(second))
        # Time for a sink that wrongly re-read the topic to insert copies.
        await asyncio.sleep(2)
        counts = await query(
            config,
            "SELECT count(), uniqExact(receipt_id), uniqExact(topic, partition, offset) "
            "FROM webhook_events",
        )

    total = len(first) + len(second)
    assert counts == [(total, total, total)]


async def test_sink_query_endpoint(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, kafka_broker))
    await create_topics(config)
    items = make_deliveries(5)
    await produce(config, config.kafka.raw_topic, items)
    url = f"http://127.0.0.1:{config.audit.query_port}"

    async with AuditSink(config), httpx.AsyncClient(base_url=url, trust_env=False) as http:
        await wait_for_count(config, "webhook_events", len(items))
        answer = await http.post(
            "/query",
            content=b"SELECT body, event_id FROM webhook_events ORDER BY offset, partition",
        )
        bad_sql = await http.post("/query", content=b"SELEC 1")
        write = await http.post("/query", content=b"DROP TABLE webhook_events")
        two = await http.post("/query", content=b"SELECT 1; SELECT 2")
        metrics_page = await http.get("/metrics")
        health = await http.get("/health")
        wrong_method = await http.get("/query")
        still_there = await query(config, "SELECT count() FROM webhook_events")

    assert answer.status_code == 200
    payload = answer.json()
    assert payload["columns"] == ["body", "event_id"]
    bodies = {body for body, _ in payload["rows"]}
    assert bodies == {item.body.decode("utf-8", "replace") for item in items}
    assert bad_sql.status_code == 400
    assert "Syntax error" in bad_sql.json()["error"]
    assert write.status_code == 400
    assert "readonly" in write.json()["error"]
    assert two.status_code == 400
    assert "one statement" in two.json()["error"]
    assert metrics_page.status_code == 200
    assert "hookline_audit_rows_inserted_total" in metrics_page.text
    assert health.json() == {"status": "ok"}
    assert wrong_method.status_code == 405
    assert still_there == [(len(items),)]


class FlakyStore(AuditStore):
    """AuditStore whose first inserts fail, optionally after storing the rows."""

    def __init__(self, dsn: str, failures: int, store_first: bool) -> None:
        super().__init__(dsn)
        self.failures = failures
        self.store_first = store_first
        self.attempts = 0

    async def insert(self, table: str, columns: Any, rows: Any, token: str) -> None:
        self.attempts += 1
        if self.failures <= 0:
            await super().insert(table, columns, rows, token)
            return
        self.failures -= 1
        if self.store_first:
            # The insert lands, but the caller gets an error (a lost HTTP response).
            await super().insert(table, columns, rows, token + ":first")
        raise OperationalError("injected insert failure")


@pytest.mark.parametrize("store_first", [False, True], ids=["insert-failed", "answer-lost"])
async def test_sink_insert_failures_retried(
    kafka_broker: LocalBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_first: bool,
) -> None:
    config = load_config(write_config(tmp_path, kafka_broker, batch_max_rows=500))
    await create_topics(config)
    items = make_deliveries(40)
    await produce(config, config.kafka.raw_topic, items)
    flaky: list[FlakyStore] = []

    def make_store(dsn: str) -> FlakyStore:
        flaky.append(FlakyStore(dsn, failures=3, store_first=store_first))
        return flaky[-1]

    monkeypatch.setattr("sinks.audit.AuditStore", make_store)
    retries_before = metric("hookline_audit_store_retries_total", operation="insert")

    async with AuditSink(config):
        await wait_for_count(config, "webhook_events", len(items))
        await asyncio.sleep(1)
        counts = await query(config, "SELECT count(), uniqExact(receipt_id) FROM webhook_events")

    assert counts == [(len(items), len(items))]
    assert flaky[0].attempts > 3
    assert metric("hookline_audit_store_retries_total", operation="insert") - retries_before >= 3


async def test_sink_http_dsn_refused(
    kafka_broker: LocalBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = f"http://127.0.0.1:{free_port()}/default"
    config = load_config(write_config(tmp_path, kafka_broker, dsn=dsn))
    await create_topics(config)
    await produce(config, config.kafka.raw_topic, make_deliveries(8))
    retries_before = metric("hookline_audit_store_retries_total", operation="create tables")
    sink = AuditSink(config)

    with caplog.at_level("WARNING", logger="sinks.audit"):
        await sink.start()
        try:
            await asyncio.sleep(4)
            wait_task = asyncio.ensure_future(sink.wait())
            await asyncio.sleep(0.1)
            still_running = not wait_task.done()
            health = await asyncio.to_thread(
                httpx.get, f"http://127.0.0.1:{config.audit.query_port}/health", trust_env=False
            )
        finally:
            await sink.stop(timeout=2)
        await asyncio.gather(wait_task, return_exceptions=True)

    assert still_running
    assert health.status_code == 200
    assert metric("hookline_audit_store_retries_total", operation="create tables") > retries_before
    retry_logs = [record for record in caplog.records if "retrying in" in record.getMessage()]
    assert len(retry_logs) >= 3
    assert all(record.levelname == "WARNING" for record in retry_logs)
    committed = await committed_offsets(config, config.kafka.raw_topic)
    assert set(committed.values()) == {None}


def start_sink_process(config_path: Path, log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=str(REPO), **env)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sinks.worker", str(config_path)],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_sink_killed_after_insert(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    config_path = write_config(tmp_path, kafka_broker, batch_max_rows=10)
    config = load_config(config_path)
    await create_topics(config)
    items = make_deliveries(60)
    await produce(config, config.kafka.raw_topic, items)
    log_path = tmp_path / "sink.log"

    # First run: SIGKILL right after the first insert, before any commit.
    killed = start_sink_process(config_path, log_path, {KILL_AFTER_INSERTS_ENV: "1"})
    returncode = await asyncio.to_thread(killed.wait, WAIT_SECONDS)
    assert returncode == -signal.SIGKILL, log_path.read_text()
    # No sink runs, so run_query opens the folder in this process.
    partial = await query(config, "SELECT count() FROM webhook_events")
    assert 0 < partial[0][0] < len(items)
    assert set((await committed_offsets(config, config.kafka.raw_topic)).values()) == {None}

    # Second run: resumes after the stored rows although nothing was committed.
    sink = start_sink_process(config_path, log_path, {})
    try:
        await wait_for_count(config, "webhook_events", len(items))
        await asyncio.sleep(2)
        counts = await query(config, "SELECT count(), uniqExact(receipt_id) FROM webhook_events")
        bodies = await stored_bodies(config, "webhook_events")
    finally:
        sink.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(sink.wait, 60)

    assert returncode == 0, log_path.read_text()
    assert counts == [(len(items), len(items))]
    for item in items:
        assert bodies[item.receipt_id] == [item.body.hex().upper()]
    assert "partitions resume at offsets" in log_path.read_text()


async def test_sink_rebalance_no_duplicates(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, kafka_broker))
    await create_topics(config)
    first = make_deliveries(40)
    await produce(config, config.kafka.raw_topic, first)
    # A second member of the group that takes partitions and never consumes them.
    intruder = AIOKafkaConsumer(
        bootstrap_servers=config.kafka.bootstrap_servers,
        group_id=config.audit.group_id,
        enable_auto_commit=False,
    )

    async with AuditSink(config):
        await wait_for_count(config, "webhook_events", len(first))

        await intruder.start()
        try:
            intruder.subscribe([config.kafka.raw_topic, config.kafka.rejected_topic])

            async def intruder_assigned() -> bool:
                await intruder.getmany(timeout_ms=100)
                return bool(intruder.assignment())

            await wait_for(intruder_assigned, "the second group member's assignment")
            intruder_partitions = {
                tp.partition for tp in intruder.assignment() if tp.topic == config.kafka.raw_topic
            }
            second = make_deliveries(40)
            await produce(config, config.kafka.raw_topic, second)
            await asyncio.sleep(3)
            while_shared = await query(config, "SELECT count() FROM webhook_events")
        finally:
            await intruder.stop()

        await wait_for_count(config, "webhook_events", len(first) + len(second))
        await asyncio.sleep(2)
        counts = await query(config, "SELECT count(), uniqExact(receipt_id) FROM webhook_events")

    total = len(first) + len(second)
    assert intruder_partitions
    # The partitions the other member held were not stored while it held them.
    assert while_shared[0][0] < total
    assert counts == [(total, total)]


async def test_sink_topics_created_later(
    kafka_broker: LocalBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(write_config(tmp_path, kafka_broker))
    items = make_deliveries(5)

    with caplog.at_level("WARNING", logger="sinks.audit"):
        async with AuditSink(config):
            await asyncio.sleep(2)
            # The first record creates the topic (the broker auto-creates topics).
            await produce(config, config.kafka.raw_topic, items)
            await wait_for_count(config, "webhook_events", len(items), timeout=30)

    assert any("do not exist yet" in record.getMessage() for record in caplog.records)
