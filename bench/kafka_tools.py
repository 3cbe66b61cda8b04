"""Kafka helpers of the benchmarks: pre-produce raw deliveries, and count what a stage wrote."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hookline.config import SourceConfig
from hookline.records import Delivery, audited_headers, new_receipt_id
from ingest.locators import EventLocator
from ingest.samples import stripe_sample

# The linger of the router's producer (streams.app.PRODUCER_LINGER_MS), used for bulk loads.
BULK_LINGER_MS = 20


def stripe_delivery(source: SourceConfig, secret: str, now: int) -> Delivery:
    """Return a Delivery as ingest records it for a new signed Stripe sample event."""
    headers, body = stripe_sample(secret, now)
    lower = {name.lower(): value for name, value in headers.items()}
    locator = EventLocator(lower, body)
    return Delivery(
        receipt_id=new_receipt_id(),
        source=source.name,
        received_at=datetime.fromtimestamp(now, UTC),
        body=body,
        content_type=lower.get("content-type", ""),
        event_id=locator.find(source.event_id),
        event_type=locator.find(source.event_type),
        entity_key=locator.find(source.entity_key),
        remote_addr="127.0.0.1",
        request_headers=audited_headers(headers.items()),
    )


async def produce_deliveries(
    bootstrap_servers: str, topic: str, source: SourceConfig, count: int
) -> int:
    """Produce COUNT distinct Stripe deliveries to TOPIC as ingest would; return their bytes."""
    secret = source.secrets[0]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=BULK_LINGER_MS,
    )
    await producer.start()
    produced_bytes = 0
    try:
        pending = []
        for _ in range(count):
            delivery = stripe_delivery(source, secret, int(time.time()))
            produced_bytes += len(delivery.body)
            pending.append(
                await producer.send(
                    topic, delivery.body, key=delivery.key, headers=delivery.kafka_headers()
                )
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return produced_bytes


@dataclass
class TopicCount:
    """Records seen on a topic and the range of their create times (Unix ms)."""

    records: int = 0
    first_timestamp_ms: int | None = None
    last_timestamp_ms: int | None = None

    def add(self, timestamp_ms: int) -> None:
        """Count one record created at TIMESTAMP_MS."""
        self.records += 1
        if self.first_timestamp_ms is None or timestamp_ms < self.first_timestamp_ms:
            self.first_timestamp_ms = timestamp_ms
        if self.last_timestamp_ms is None or timestamp_ms > self.last_timestamp_ms:
            self.last_timestamp_ms = timestamp_ms

    @property
    def records_per_second(self) -> float | None:
        """Records after the first one per second of create time, or None below 2 records."""
        if self.first_timestamp_ms is None or self.last_timestamp_ms is None:
            return None
        span = (self.last_timestamp_ms - self.first_timestamp_ms) / 1000
        if self.records < 2 or span <= 0:
            return None
        return (self.records - 1) / span


async def count_records(
    bootstrap_servers: str,
    topic: str,
    expected: int,
    timeout: float,
    *,
    on_progress: Callable[[TopicCount], None] | None = None,
) -> TopicCount:
    """Read TOPIC from the start with read_committed until EXPECTED records or TIMEOUT seconds.

    ON_PROGRESS, when given, is called with the count so far between fetches. It may raise
    to stop early, for example when the process that writes the topic exited.
    """
    # Without a group id the consumer is assigned every partition of the topic.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    counted = TopicCount()
    try:
        deadline = time.monotonic() + timeout
        while counted.records < expected and time.monotonic() < deadline:
            if on_progress is not None:
                on_progress(counted)
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    counted.add(record.timestamp)
    finally:
        await consumer.stop()
    return counted
