"""Store-layer benchmark of the audit sink: pre-built rows into embedded chDB, no Kafka.

Rows are `sinks.rows.event_row` of Stripe deliveries of about 1 KB, built before the clock
starts, then inserted through `sinks.store.AuditStore.insert` (the sink's own call, one
ClickHouse thread) in batches of each size. Run it pinned to one core to get rows/s per core:

    taskset -c 0 python -m bench.sink_store --folder /tmp/chdb --rows 200000 --batch-sizes 1000,5000

It prints one JSON line: per batch size the rows/s over the summed insert time, the rows
per CPU-second of this process while the inserts run, and the insert latency percentiles,
plus the time `event_row` takes per row. Each batch size's rows are copied with new
offsets before its clock starts, so neither number counts that copy.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord

from bench.configs import shipped_settings
from bench.kafka_tools import stripe_delivery
from bench.stats import percentile
from hookline.config import parse_config
from sinks.dsn import normalize_dsn
from sinks.rows import event_row
from sinks.schema import EVENT_COLUMNS
from sinks.store import AuditStore

EVENTS_TABLE = "webhook_events"
REJECTIONS_TABLE = "webhook_rejections"
TOPIC = "bench.sink.raw"
# Distinct deliveries built; the rows repeat them with new receipt ids and offsets.
DISTINCT_DELIVERIES = 500
_RECEIPT = EVENT_COLUMNS.index("receipt_id")
_OFFSET = EVENT_COLUMNS.index("offset")


def kafka_records(count: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Return COUNT raw-topic records of distinct Stripe deliveries, as a consumer gets them."""
    _, stripe = shipped_settings()
    source = parse_config({"sources": {"stripe": stripe}}).sources["stripe"]
    now = int(time.time())
    records = []
    for offset in range(count):
        delivery = stripe_delivery(source, source.secrets[0], now)
        records.append(
            ConsumerRecord(
                topic=TOPIC,
                partition=0,
                offset=offset,
                timestamp=now * 1000,
                timestamp_type=0,
                key=delivery.key,
                value=delivery.body,
                checksum=None,
                serialized_key_size=len(delivery.key),
                serialized_value_size=len(delivery.body),
                headers=delivery.kafka_headers(),
            )
        )
    return records


def build_rows(total: int) -> tuple[list[tuple[Any, ...]], float]:
    """Return TOTAL event rows and the seconds `event_row` took per row on distinct records."""
    records = kafka_records(DISTINCT_DELIVERIES)
    started = time.perf_counter()
    templates = [event_row(record).values for record in records]
    seconds_per_row = (time.perf_counter() - started) / len(records)

    rows = []
    for index in range(total):
        values = list(templates[index % len(templates)])
        values[_RECEIPT] = uuid.uuid4()
        values[_OFFSET] = index
        rows.append(tuple(values))
    return rows, seconds_per_row


async def measure(folder: Path, total: int, batch_sizes: Sequence[int]) -> dict[str, Any]:
    """Insert TOTAL rows per batch size into a new chDB folder; return rates and latencies.

    Each batch size has its own events table. Before its clock starts, the table of the
    previous size is merged with OPTIMIZE FINAL, so the background merges of those parts do
    not run in this size's window. The merges of its own parts do, as in the sink.
    """
    rows, seconds_per_row = build_rows(total)
    store = AuditStore(normalize_dsn(f"chdb://{folder}"))
    await store.open()
    results: dict[str, Any] = {
        "rows_per_batch_size": total,
        "row_bytes_mean": sum(len(row[EVENT_COLUMNS.index("body")]) for row in rows) / len(rows),
        "event_row_us_per_row": seconds_per_row * 1e6,
        "batches": {},
    }
    try:
        previous_table: str | None = None
        for size in batch_sizes:
            table = f"{EVENTS_TABLE}_{size}"
            await store.create_tables(table, f"{REJECTIONS_TABLE}_{size}")
            # One small insert first, so opening files and caches is not in the first timing.
            await store.insert(table, EVENT_COLUMNS, rows[:100], token="bench:warmup")
            if previous_table is not None:
                await store.command(f"OPTIMIZE TABLE {previous_table} FINAL")
            await store.command(f"OPTIMIZE TABLE {table} FINAL")
            previous_table = table

            chunks = _chunks(rows, size, first_offset=100)
            # Collect the garbage of the copies now, so the inserts do not pay for it.
            gc.collect()
            latencies = []
            cpu_before = _process_cpu_seconds()
            for chunk in chunks:
                began = time.perf_counter()
                await store.insert(table, EVENT_COLUMNS, chunk, token=f"bench:{chunk[0][_OFFSET]}")
                latencies.append(time.perf_counter() - began)
            # All threads of this process, chDB's included, so it also counts the
            # background merges of this size's parts that run in this window.
            cpu_used = _process_cpu_seconds() - cpu_before
            results["batches"][str(size)] = {
                "inserts": len(latencies),
                "rows_per_second": total / sum(latencies),
                "rows_per_cpu_second": total / cpu_used if cpu_used > 0 else None,
                "insert_p50_ms": percentile(latencies, 0.5) * 1000,
                "insert_p99_ms": percentile(latencies, 0.99) * 1000,
                "insert_max_ms": max(latencies) * 1000,
            }
    finally:
        await store.close()
    return results


def _process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _chunks(
    rows: Sequence[tuple[Any, ...]], size: int, first_offset: int
) -> list[list[tuple[Any, ...]]]:
    """Return ROWS split into inserts of SIZE rows, renumbered from FIRST_OFFSET."""
    renumbered = [_with_offset(row, first_offset + i) for i, row in enumerate(rows)]
    return [renumbered[start : start + size] for start in range(0, len(renumbered), size)]


def _with_offset(row: tuple[Any, ...], offset: int) -> tuple[Any, ...]:
    values = list(row)
    values[_OFFSET] = offset
    return tuple(values)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run the measurement and print it as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.sink_store", description=__doc__)
    parser.add_argument("--folder", type=Path, required=True, help="new chDB data folder")
    parser.add_argument("--rows", type=int, default=200_000, help="rows per batch size")
    parser.add_argument(
        "--batch-sizes", default="1000,5000,20000", help="comma-separated rows per insert"
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    print(json.dumps(asyncio.run(measure(args.folder, args.rows, sizes))), flush=True)


if __name__ == "__main__":
    main()
