"""Ingest against a real Kafka broker: records reach the topic, outages get 503 responses."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from litestar import Litestar
from litestar.testing import TestClient

from hookline import records
from hookline.broker import LocalBroker, find_free_ports
from hookline.config import HooklineConfig, IngestConfig, KafkaConfig, SourceConfig
from ingest.app import create_app
from ingest.producer import KafkaRecordProducer
from ingest.samples import build_sample
from ingest.signing import github_headers

pytestmark = pytest.mark.integration

STRIPE_SECRET = "whsec_test_only_kafka_stripe_secret"
GITHUB_SECRET = "test-only-kafka-github-secret"
READY_TIMEOUT_SECONDS = 60.0
BROKER_READY_TIMEOUT_SECONDS = 120.0


def make_config(bootstrap_servers: str, suffix: str) -> HooklineConfig:
    return HooklineConfig(
        kafka=KafkaConfig(
            bootstrap_servers=bootstrap_servers,
            raw_topic=f"test.ingest.raw.{suffix}",
            rejected_topic=f"test.ingest.rejected.{suffix}",
            produce_timeout_seconds=3.0,
        ),
        ingest=IngestConfig(retry_after_seconds=9),
        sources={
            "stripe": SourceConfig(
                name="stripe",
                scheme="stripe",
                secrets=(STRIPE_SECRET,),
                event_id="json:/id",
                event_type="json:/type",
            ),
            "github": SourceConfig(
                name="github",
                scheme="github",
                secrets=(GITHUB_SECRET,),
                event_id="header:X-GitHub-Delivery",
                event_type="header:X-GitHub-Event",
            ),
        },
    )


def make_app(config: HooklineConfig) -> Litestar:
    # Short reconnect delays, so the producer reconnects to a restarted broker quickly.
    producer = KafkaRecordProducer(
        config.kafka, reconnect_min_seconds=0.2, reconnect_max_seconds=1.0
    )
    return create_app(config, producer=producer)


def wait_until_ready(client: TestClient[Litestar]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while client.get("/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError(f"ingest not ready within {READY_TIMEOUT_SECONDS} s")
        time.sleep(0.2)


async def read_topic(bootstrap_servers: str, topic: str, count: int) -> list[ConsumerRecord]:
    """Read COUNT records from the start of TOPIC, or fail after a timeout."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        found: list[ConsumerRecord] = []
        deadline = time.monotonic() + 30.0
        while len(found) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                found.extend(batch)
        return found
    finally:
        await consumer.stop()


async def test_ingest_kafka_record_on_topic(kafka_broker: LocalBroker):
    config = make_config(kafka_broker.bootstrap_servers, uuid.uuid4().hex)
    headers, body = build_sample(config.sources["stripe"])
    forged_body = body.replace(b'"amount": 2000', b'"amount": 1')

    with TestClient(make_app(config)) as client:
        wait_until_ready(client)
        response = client.post("/webhooks/stripe", content=body, headers=headers)
        forged = client.post("/webhooks/stripe", content=forged_body, headers=headers)

    assert response.status_code == 200
    assert forged.status_code == 401
    [record] = await read_topic(kafka_broker.bootstrap_servers, config.kafka.raw_topic, 1)
    found = {name: value for name, value in record.headers}
    event_id = found[records.EVENT_ID].decode()
    assert record.value == body
    assert record.key == f"stripe:{event_id}".encode()
    assert event_id.startswith("evt_")
    assert found[records.RECEIPT_ID] == response.json()["receipt_id"].encode()
    assert found[records.EVENT_TYPE] == b"payment_intent.succeeded"
    assert b"v1=" not in found[records.REQUEST_HEADERS]

    [rejected] = await read_topic(kafka_broker.bootstrap_servers, config.kafka.rejected_topic, 1)
    rejected_headers = dict(rejected.headers)
    assert rejected.value == forged_body[: config.ingest.rejected_body_max_bytes]
    assert rejected_headers[records.STATUS] == b"401"
    assert rejected_headers[records.REASON] == b"no_matching_signature"


async def test_ingest_kafka_large_body_on_topic(kafka_broker: LocalBroker):
    # A GitHub push of about 165 KB (real pushes touching thousands of files
    # are this size) must reach the topic unchanged.
    config = make_config(kafka_broker.bootstrap_servers, uuid.uuid4().hex)
    headers, _ = build_sample(config.sources["github"])
    added = ",".join(f'"src/module_{i // 50:04d}/file_{i:04d}.py"' for i in range(5400))
    body = ('{"ref":"refs/heads/main","commits":[{"added":[' + added + "]}]}").encode()
    headers = headers | github_headers(GITHUB_SECRET, body)

    with TestClient(make_app(config)) as client:
        wait_until_ready(client)
        response = client.post("/webhooks/github", content=body, headers=headers)

    assert len(body) > 160_000
    assert response.status_code == 200
    [record] = await read_topic(kafka_broker.bootstrap_servers, config.kafka.raw_topic, 1)
    assert record.value == body


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test alone, so stopping it does not disturb other tests."""
    port, controller_port = find_free_ports(2)
    broker = LocalBroker(data_dir=tmp_path / "kafka", port=port, controller_port=controller_port)
    try:
        yield broker
    finally:
        broker.stop()


def post_sample(client: TestClient[Litestar], config: HooklineConfig) -> tuple[int, dict, bytes]:
    headers, body = build_sample(config.sources["stripe"])
    response = client.post("/webhooks/stripe", content=body, headers=headers)
    return response.status_code, dict(response.headers), body


def post_until_accepted(client: TestClient[Litestar], config: HooklineConfig) -> bytes:
    """Post new samples until one gets 200. Every other response must be 503."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status, _, body = post_sample(client, config)
        if status == 200:
            return body
        assert status == 503
        time.sleep(0.2)
    raise AssertionError(f"no 200 within {READY_TIMEOUT_SECONDS} s after the broker restarted")


async def test_ingest_kafka_broker_down_at_startup(own_broker: LocalBroker):
    config = make_config(own_broker.bootstrap_servers, uuid.uuid4().hex)

    with TestClient(make_app(config)) as client:
        down_status, down_headers, _ = post_sample(client, config)
        down_ready = client.get("/readyz").status_code

        own_broker.start()
        own_broker.wait_ready(BROKER_READY_TIMEOUT_SECONDS)
        body = post_until_accepted(client, config)

    assert down_status == 503
    assert down_headers["retry-after"] == "9"
    assert down_ready == 503
    on_topic = await read_topic(own_broker.bootstrap_servers, config.kafka.raw_topic, 1)
    assert [record.value for record in on_topic] == [body]


async def test_ingest_kafka_broker_stopped_and_restarted(own_broker: LocalBroker):
    config = make_config(own_broker.bootstrap_servers, uuid.uuid4().hex)
    own_broker.start()
    own_broker.wait_ready(BROKER_READY_TIMEOUT_SECONDS)

    with TestClient(make_app(config)) as client:
        wait_until_ready(client)
        before, _, before_body = post_sample(client, config)

        own_broker.stop()
        outage = [post_sample(client, config) for _ in range(3)]
        outage_ready = client.get("/readyz").status_code

        own_broker.start()
        own_broker.wait_ready(BROKER_READY_TIMEOUT_SECONDS)
        after_body = post_until_accepted(client, config)
        wait_until_ready(client)

    assert before == 200
    for status, headers, _ in outage:
        assert status == 503
        assert headers["retry-after"] == "9"
    assert outage_ready == 503
    outage_bodies = [body for _, _, body in outage]
    sent = {before_body, after_body, *outage_bodies}
    topic = config.kafka.raw_topic
    values = [record.value for record in await read_topic(own_broker.bootstrap_servers, topic, 5)]
    assert before_body in values
    assert after_body in values
    # Records that got a 503 response may still arrive later, because the
    # idempotent producer keeps retrying them, but never twice.
    assert len(values) == len(set(values))
    assert set(values) <= sent


async def test_ingest_kafka_shutdown_drops_unacknowledged(own_broker, caplog):
    config = make_config(own_broker.bootstrap_servers, uuid.uuid4().hex)
    own_broker.start()
    own_broker.wait_ready(BROKER_READY_TIMEOUT_SECONDS)
    producer = KafkaRecordProducer(
        config.kafka, reconnect_min_seconds=0.2, shutdown_timeout_seconds=1.0
    )
    caplog.set_level(logging.INFO, logger="ingest")

    with TestClient(create_app(config, producer=producer)) as client:
        wait_until_ready(client)
        # A first record creates the topic, so the next one is buffered at once.
        first, _, _ = post_sample(client, config)
        own_broker.stop()
        status, _, _ = post_sample(client, config)
        pending = producer.pending
        stopping = time.monotonic()
    shutdown_seconds = time.monotonic() - stopping

    assert first == 200
    assert status == 503
    assert pending == 1
    assert shutdown_seconds < 5.0
    messages = [record.getMessage() for record in caplog.records]
    assert any("1 unacknowledged records are dropped" in message for message in messages)


async def test_ingest_kafka_oversized_record_503(kafka_broker, caplog):
    # The source accepts 4 MiB, but the producer's max_request_size is 1 MiB.
    config = make_config(kafka_broker.bootstrap_servers, uuid.uuid4().hex)
    github = SourceConfig(
        name="github", scheme="github", secrets=(GITHUB_SECRET,), max_body_bytes=4 * 1024 * 1024
    )
    config = HooklineConfig(kafka=config.kafka, ingest=config.ingest, sources={"github": github})
    producer = KafkaRecordProducer(config.kafka, max_request_size=1024 * 1024)
    body = b'{"pad":"' + b"x" * (1536 * 1024) + b'"}'
    headers = {"Content-Type": "application/json", **github_headers(GITHUB_SECRET, body)}
    caplog.set_level(logging.WARNING, logger="ingest")

    with TestClient(create_app(config, producer=producer)) as client:
        wait_until_ready(client)
        response = client.post("/webhooks/github", content=body, headers=headers)

    assert response.status_code == 503
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "message.max.bytes" in messages
    assert f"{len(body)}-byte body" in messages
