"""Tests for hookline.broker: a real Kafka broker started from its jars by LocalBroker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from hookline.broker import (
    BrokerNotReadyError,
    LocalBroker,
    ToolMissingError,
    fetch_jars,
    find_free_ports,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 120.0
CONSUME_TIMEOUT_SECONDS = 30.0


def unique_topic(case: str) -> str:
    return f"test-broker-{case}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """Provide a broker of the test's own, for tests that stop or kill it, and stop it after."""
    port, controller_port = find_free_ports(2)
    broker = LocalBroker(data_dir=tmp_path / "kafka", port=port, controller_port=controller_port)
    try:
        yield broker
    finally:
        broker.stop()


async def consume(
    bootstrap_servers: str,
    topic: str,
    expected_count: int,
    *,
    isolation_level: str = "read_uncommitted",
    group_id: str | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the earliest offset until ``expected_count`` records arrived.

    With a ``group_id``, commits the consumer group's offsets before returning.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + CONSUME_TIMEOUT_SECONDS
        while len(records) < expected_count and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for partition_records in batches.values():
                records.extend(partition_records)
        if group_id is not None:
            await consumer.commit()
    finally:
        await consumer.stop()
    return records


async def produce(bootstrap_servers: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value=value, key=value)
    finally:
        await producer.stop()


async def committed_offsets(
    bootstrap_servers: str, group_id: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int | None]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {partition: await consumer.committed(partition) for partition in partitions}
    finally:
        await consumer.stop()


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_record_with_headers_round_trips(kafka_broker: LocalBroker) -> None:
    topic = unique_topic("headers")
    headers = [("ce_id", b"evt_1"), ("ce_type", b"invoice.paid"), ("ce_source", b"stripe")]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            topic, value=b'{"id": "evt_1"}', key=b"cus_1", headers=headers
        )
    finally:
        await producer.stop()

    records = await consume(kafka_broker.bootstrap_servers, topic, 1)

    assert len(records) == 1
    record = records[0]
    assert record.key == b"cus_1"
    assert record.value == b'{"id": "evt_1"}'
    assert list(record.headers) == headers
    assert (record.partition, record.offset) == (sent.partition, sent.offset)


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_transaction_commit_visible_abort_hidden(kafka_broker: LocalBroker) -> None:
    topic = unique_topic("transaction")
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        transactional_id=f"{topic}-producer",
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        # Partition 0 for both, so an aborted record that leaked would come first.
        await producer.begin_transaction()
        await producer.send_and_wait(topic, value=b"aborted", partition=0)
        await producer.abort_transaction()

        async with producer.transaction():
            await producer.send_and_wait(topic, value=b"committed", partition=0)
    finally:
        await producer.stop()

    committed = await consume(
        kafka_broker.bootstrap_servers, topic, 1, isolation_level="read_committed"
    )
    uncommitted = await consume(kafka_broker.bootstrap_servers, topic, 2)

    assert [record.value for record in committed] == [b"committed"]
    assert [record.value for record in uncommitted] == [b"aborted", b"committed"]


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_stop_start_keeps_records_and_offsets(own_broker: LocalBroker) -> None:
    topic = unique_topic("restart")
    group_id = f"{topic}-group"
    values = [f"record-{number}".encode() for number in range(10)]
    own_broker.start()
    own_broker.wait_ready(READY_TIMEOUT_SECONDS)
    cluster_id = own_broker.cluster_id
    await produce(own_broker.bootstrap_servers, topic, values)
    before = await consume(own_broker.bootstrap_servers, topic, len(values), group_id=group_id)
    partitions = sorted({TopicPartition(record.topic, record.partition) for record in before})
    offsets_before = await committed_offsets(own_broker.bootstrap_servers, group_id, partitions)

    own_broker.stop()
    assert not own_broker.is_running()
    own_broker.start()
    own_broker.wait_ready(READY_TIMEOUT_SECONDS)

    after = await consume(own_broker.bootstrap_servers, topic, len(values))
    offsets_after = await committed_offsets(own_broker.bootstrap_servers, group_id, partitions)
    assert own_broker.cluster_id == cluster_id
    assert sorted(record.value for record in after) == sorted(values)
    assert all(offset is not None for offset in offsets_before.values())
    assert offsets_after == offsets_before


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_kill_start_keeps_acknowledged_records(own_broker: LocalBroker) -> None:
    topic = unique_topic("kill")
    values = [f"record-{number}".encode() for number in range(10)]
    own_broker.start()
    own_broker.wait_ready(READY_TIMEOUT_SECONDS)
    await produce(own_broker.bootstrap_servers, topic, values)

    own_broker.kill()
    assert own_broker.returncode == -9
    own_broker.start()
    own_broker.wait_ready(READY_TIMEOUT_SECONDS)

    after = await consume(own_broker.bootstrap_servers, topic, len(values))
    assert sorted(record.value for record in after) == sorted(values)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_start_reports_port_in_use(own_broker: LocalBroker) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", own_broker.port))
        listener.listen()
        own_broker.start()

        with pytest.raises(BrokerNotReadyError) as raised:
            own_broker.wait_ready(READY_TIMEOUT_SECONDS)

    assert raised.value.exited
    assert not raised.value.retriable
    assert "Address already in use" in str(raised.value)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_run_command_stops_broker_on_sigterm(tmp_path: Path) -> None:
    port, controller_port = find_free_ports(2)
    output_path = tmp_path / "run.log"
    command = [
        sys.executable,
        "-m",
        "hookline.broker",
        "run",
        "--data-dir",
        str(tmp_path / "kafka"),
        "--port",
        str(port),
        "--controller-port",
        str(controller_port),
    ]
    with output_path.open("wb") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while "ready after" not in output_path.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, output_path.read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(60)
    finally:
        # SIGTERM lets the command stop its broker, which a SIGKILL would leave running.
        if process.poll() is None:
            process.terminate()
            process.wait(60)

    log = output_path.read_text()
    broker_pid = re.search(r"broker pid (\d+)", log)
    assert exit_code == 0, log
    assert "ready after" in log
    assert broker_pid is not None, log
    with pytest.raises(ProcessLookupError):
        os.kill(int(broker_pid.group(1)), 0)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_fetch_jars_replaces_stale_folder(tmp_path: Path) -> None:
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    (lib_dir / "stale-1.0.jar").write_bytes(b"")

    fetched = fetch_jars(lib_dir)
    marker = next(fetched.glob(".hookline-fetched"))
    marker_mtime = marker.stat().st_mtime_ns
    fetched_again = fetch_jars(lib_dir)

    jar_names = [path.name for path in fetched.glob("*.jar")]
    assert fetched == lib_dir
    assert fetched_again == lib_dir
    assert "stale-1.0.jar" not in jar_names
    assert any(name.startswith("kafka_2.13-") for name in jar_names)
    assert any(name.startswith("log4j-core-") for name in jar_names)
    assert marker.stat().st_mtime_ns == marker_mtime
    assert sorted(path.name for path in tmp_path.iterdir()) == [".lib.lock", "lib"]


def test_server_properties_apply_overrides(tmp_path: Path) -> None:
    broker = LocalBroker(
        data_dir=tmp_path,
        port=19092,
        controller_port=19093,
        num_partitions=2,
        properties={"log.retention.ms": "60000", "offsets.topic.num.partitions": "1"},
    )

    settings = broker.server_properties()

    assert settings["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert settings["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert settings["num.partitions"] == "2"
    assert settings["transaction.state.log.min.isr"] == "1"
    assert settings["log.retention.ms"] == "60000"
    assert settings["offsets.topic.num.partitions"] == "1"
    assert broker.bootstrap_servers == "127.0.0.1:19092"


@pytest.mark.parametrize(
    ("port", "controller_port", "heap"),
    [
        pytest.param(19092, 19092, "512m", id="same-ports"),
        pytest.param(0, 19093, "512m", id="port-zero"),
        pytest.param(19092, 70000, "512m", id="controller-port-too-large"),
        pytest.param(19092, 19093, "lots", id="heap-not-a-size"),
    ],
)
def test_local_broker_rejects_invalid_settings(
    tmp_path: Path, port: int, controller_port: int, heap: str
) -> None:
    with pytest.raises(ValueError):
        LocalBroker(data_dir=tmp_path, port=port, controller_port=controller_port, heap=heap)


def test_fetch_jars_without_mvn_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    with pytest.raises(ToolMissingError, match="mvn not found") as raised:
        fetch_jars(tmp_path / "lib")

    assert "apt-get install maven" in str(raised.value)


def test_format_without_java_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    broker = LocalBroker(data_dir=tmp_path / "kafka", port=19092, controller_port=19093)

    with pytest.raises(ToolMissingError, match="java not found"):
        broker.format()
