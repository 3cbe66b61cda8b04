"""Evidence about an event that a fault scenario found missing from the routed topics.

For each missing (source, event id), `trace_missing_routed` returns where its
deliveries are in the raw topic and the router log lines that mention the
event id. It also returns what the router's deduplication changelog contains
for the event's key, read once with read_committed and once with
read_uncommitted. A key present only in
the read_uncommitted view was written by a transaction that never committed.
A router that dropped the event as a repeat logged which first delivery it
matched (see `streams.router`), so those lines tell whether that first
delivery was ever routed.

The fault tests attach the result to the scenario's details, so a failure
message carries it. Nothing here decides whether a test passes.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pipeline_support import Pipeline

from hookline import records

MAX_LOG_LINES = 20


async def _read_all(
    bootstrap: str, topic: str, isolation_level: str, timeout: float
) -> list[tuple[int, int, bytes | None, bytes | None, dict[str, bytes]]]:
    """Return (partition, offset, key, value, headers) of every record of TOPIC."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
        group_id=None,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    found = []
    deadline = time.monotonic() + timeout
    end: dict[TopicPartition, int] = {}
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for partition, batch in batches.items():
                found.extend(
                    (partition.partition, r.offset, r.key, r.value, dict(r.headers)) for r in batch
                )
            partitions = consumer.assignment()
            if partitions and not end:
                end = await consumer.end_offsets(list(partitions))
            if end and all([await consumer.position(tp) >= end[tp] for tp in end]):
                break
    finally:
        await consumer.stop()
    return found


def _log_lines(pipeline: Pipeline, needle: str) -> list[str]:
    lines: list[str] = []
    for path in sorted(pipeline.log_dir.glob("router*.log")):
        with path.open("rb") as log:
            for raw in log:
                if needle.encode() in raw:
                    lines.append(f"{path.name}: {raw.decode('utf-8', 'replace').rstrip()}")
    return lines[:MAX_LOG_LINES]


async def trace_missing_routed(
    pipeline: Pipeline, events: list[tuple[str, str]], timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Collect the raw records, changelog entries and router log lines of each of EVENTS."""
    if not events:
        return []
    config = pipeline.config
    bootstrap = config.kafka.bootstrap_servers
    changelog_topic = f"{config.router.app_id}-dedupe-changelog"
    raw = await _read_all(bootstrap, config.kafka.raw_topic, "read_committed", timeout)
    changelog = {
        level: await _read_all(bootstrap, changelog_topic, level, timeout)
        for level in ("read_committed", "read_uncommitted")
    }

    traces = []
    for source, event_id in events:
        deliveries = [
            {
                "partition": partition,
                "offset": offset,
                "receipt_id": headers.get(records.RECEIPT_ID, b"").decode(),
                "received_at": headers.get(records.RECEIVED_AT, b"").decode(),
            }
            for partition, offset, _, _, headers in raw
            if headers.get(records.SOURCE, b"").decode() == source
            and headers.get(records.EVENT_ID, b"").decode() == event_id
        ]
        table_key = f"{source}:{event_id}".encode()
        entries = {
            level: [
                {"partition": partition, "offset": offset, "value": (value or b"").decode()}
                for partition, offset, key, value, _ in found
                if key == table_key
            ]
            for level, found in changelog.items()
        }
        traces.append(
            {
                "event": f"{source}:{event_id}",
                "raw_deliveries": deliveries,
                "changelog": entries,
                "router_log": _log_lines(pipeline, event_id),
            }
        )
    return traces
