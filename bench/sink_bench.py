"""Audit sink throughput: the store layer alone, and the whole sink consuming from Kafka.

- Store layer: `bench.sink_store` in a process pinned to `SERVER_CPU` inserts pre-built rows
  into a new chDB folder, for several batch sizes.
- Whole sink: `hookline sink`, pinned to `SERVER_CPU`, reads a pre-produced raw topic from
  its start into a new chDB folder. Each insert stamps its rows with one `inserted_at`
  (ClickHouse's now64() is fixed per query), so the table itself records when each insert
  happened. Throughput is the rows after the first insert divided by the time from the first
  to the last insert, which leaves start-up and the group join out.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from bench.context import LOAD_CPU, SERVER_CPU, BenchContext
from bench.processes import Service, pinned, run_bounded
from hookline.config import HooklineConfig
from sinks.errors import QueryError
from sinks.query import run_query

logger = logging.getLogger(__name__)

STORE_TIMEOUT_SECONDS = 600.0


def run_store_bench(
    context: BenchContext, *, rows: int, batch_sizes: Sequence[int]
) -> dict[str, Any]:
    """Run `bench.sink_store` pinned to one core and return its results."""
    command = pinned(
        [
            context.python, "-m", "bench.sink_store",
            "--folder", str(context.work_dir / "chdb-store"),
            "--rows", str(rows),
            "--batch-sizes", ",".join(str(size) for size in batch_sizes),
        ],
        SERVER_CPU,
    )  # fmt: skip
    completed = run_bounded(command, timeout=STORE_TIMEOUT_SECONDS)
    if completed.returncode != 0:
        raise RuntimeError(
            f"bench.sink_store failed with code {completed.returncode}: {completed.stderr[-2000:]}"
        )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["cpus"] = SERVER_CPU
    return result


def _count_rows(config: HooklineConfig) -> int:
    try:
        _, rows = run_query(config, "SELECT count() FROM webhook_events")
    except QueryError:
        # The sink is still starting or has not created the table yet.
        return -1
    return int(rows[0][0])


def _insert_times(config: HooklineConfig) -> list[tuple[int, int]]:
    sql = (
        "SELECT toUnixTimestamp64Micro(inserted_at) AS t, count() FROM webhook_events "
        "GROUP BY t ORDER BY t"
    )
    _, rows = run_query(config, sql)
    return [(int(micros), int(count)) for micros, count in rows]


def sink_rate(inserts: Sequence[tuple[int, int]]) -> float | None:
    """Return rows/s from (insert time in µs, rows) pairs: rows after the first insert per s."""
    if len(inserts) < 2:
        return None
    span = (inserts[-1][0] - inserts[0][0]) / 1e6
    if span <= 0:
        return None
    return sum(count for _, count in inserts[1:]) / span


def run_sink_bench(
    context: BenchContext,
    *,
    raw_topic: str,
    records: int,
    batch_max_rows: Sequence[int],
    timeout: float,
) -> dict[str, Any]:
    """Run the whole sink over RAW_TOPIC (RECORDS records) once per batch_max_rows value."""
    results: dict[str, Any] = {
        "records": records,
        "raw_topic": raw_topic,
        "sink_cpus": SERVER_CPU,
        "broker_cpus": LOAD_CPU,
        "runs": {},
    }
    for batch in batch_max_rows:
        label = f"sink{batch}"
        config = context.config(label, raw_topic=raw_topic, batch_max_rows=batch)
        sink = context.start(
            Service(
                label,
                context.hookline_command(config, "sink"),
                context.log_path(f"sink-bench-{batch}"),
                cpus=SERVER_CPU,
            )
        )
        try:
            run = _measure_sink(config, sink, records, timeout)
        finally:
            context.services.stop(sink)
        run["batch_max_seconds"] = config.audit.batch_max_seconds
        results["runs"][str(batch)] = run
        logger.info("sink with batch_max_rows=%d: %.0f rows/s", batch, run["rows_per_second"] or 0)
    return results


def _measure_sink(
    config: HooklineConfig, sink: Service, records: int, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    rss_max = 0
    stored = -1
    # (sink CPU seconds, rows stored) at the first check that saw rows, and at the last.
    marks: dict[str, tuple[float, int]] = {}
    while time.monotonic() < deadline:
        sink.check_running()
        rss_max = max(rss_max, sink.rss_bytes())
        stored = _count_rows(config)
        if stored > 0:
            mark = (sink.cpu_seconds(), stored)
            marks.setdefault("first", mark)
            marks["last"] = mark
        if stored >= records:
            break
        time.sleep(0.25)
    if stored < records:
        raise RuntimeError(
            f"the sink stored {max(stored, 0)} of {records} rows within {timeout:.0f} s; "
            f"see {sink.log_path}"
        )

    inserts = _insert_times(config)
    return {
        "rows_stored": stored,
        "inserts": len(inserts),
        "rows_per_insert_mean": stored / len(inserts) if inserts else None,
        "rows_per_second": sink_rate(inserts),
        "seconds_first_to_last_insert": (
            (inserts[-1][0] - inserts[0][0]) / 1e6 if len(inserts) > 1 else None
        ),
        "cpu_us_per_row": _cpu_us_per_row(marks),
        "rss_max_bytes": rss_max,
    }


def _cpu_us_per_row(marks: dict[str, tuple[float, int]]) -> float | None:
    """Return sink CPU µs per stored row between the first and the last mark.

    It includes the sink's share of the count() queries that this benchmark sends.
    """
    if "first" not in marks:
        return None
    (cpu_first, rows_first), (cpu_last, rows_last) = marks["first"], marks["last"]
    if rows_last <= rows_first:
        return None
    return 1e6 * (cpu_last - cpu_first) / (rows_last - rows_first)
