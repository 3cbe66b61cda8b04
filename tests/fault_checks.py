"""After a fault and its recovery: what reached Kafka and ClickHouse, compared with what was sent.

`observe` reads the raw topic, every routed topic and the audit table of one
pipeline. `tally` compares that with a `LoadResult`:

- by receipt id: every 2xx'd receipt id is in the raw topic once, and every
  receipt id of the raw topic is in the audit table once (`count()` and
  `uniqExact` without FINAL);
- by provider event id: every 2xx'd event is in its routed topic once, read
  with `read_committed`, and no routed record names an event never sent.

A delivery that got a 503 from ingest can still reach the raw topic when
the broker acknowledges it after ingest's timeout. The provider's retry then
adds a second raw record with its own receipt id, which the audit table
keeps and the router drops as a repeat, so neither counts as a duplicate.
The same holds for a provider's repeat of an event after its 2xx. An
identical copy of a stored request gets the stored receipt id back, so the
2xx responses can name fewer receipt ids than there were deliveries.

`report` prints a one-line summary and appends it as JSON to the file named
by $HOOKLINE_FAULT_RESULTS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from load_client import LoadClient, LoadResult, make_webhooks
from pipeline_support import Pipeline, query_sink, read_to_end
from routing_trace import trace_missing_routed

from hookline import records
from streams.envelope import CE_ID, CE_SOURCE, SOURCE_URI_PREFIX
from streams.topics import topic_names

RESULTS_ENV = "HOOKLINE_FAULT_RESULTS"

EventKey = tuple[str, str]


@dataclass
class Observed:
    """What one pipeline stored: raw records, routed records and audit rows."""

    # Receipt id -> records in the raw topic.
    raw: Counter[str]
    # (source, provider event id) -> records in the routed topics.
    routed: Counter[EventKey]
    # Routed-topic records without CloudEvents headers, by topic.
    other_records: Counter[str]
    # Receipt id -> rows in the audit table.
    table: Counter[str]
    table_count: int
    table_unique: int


@dataclass
class FaultResult:
    """Outcome of one scenario: the counts of the results table in docs/reliability.md."""

    scenario: str
    # Deliveries sent, provider repeats of an event included, and distinct events among them.
    sent: int
    events: int
    accepted: int
    # Distinct receipt ids among the 2xx responses: ingest returns the stored receipt id for an
    # identical copy of a request it stored.
    receipts: int
    in_topic: int
    in_table: int
    lost: int
    duplicated: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{self.scenario}: sent={self.sent} events={self.events} 2xx={self.accepted} "
            f"receipts={self.receipts} in_topic={self.in_topic} "
            f"in_table={self.in_table} lost={self.lost} duplicated={self.duplicated} "
            f"({self.seconds:.1f} s)"
        )


def routed_topics(pipeline: Pipeline) -> list[str]:
    """Return every topic the router of PIPELINE may write, except the changelog."""
    config = pipeline.config
    skipped = {config.kafka.raw_topic, config.kafka.rejected_topic}
    return [name for name in topic_names(config) if name not in skipped]


def _event_key(headers: dict[str, bytes]) -> EventKey | None:
    source = headers.get(CE_SOURCE, b"").decode()
    event_id = headers.get(CE_ID, b"").decode()
    if not source.startswith(SOURCE_URI_PREFIX) or not event_id:
        return None
    return source.removeprefix(SOURCE_URI_PREFIX), event_id


async def read_raw(pipeline: Pipeline, timeout: float = 90.0) -> Counter[str]:
    """Count the raw topic's records by receipt id; records without one count under ''."""
    config = pipeline.config
    raw = await read_to_end(config.kafka.bootstrap_servers, config.kafka.raw_topic, timeout)
    return Counter(headers.get(records.RECEIPT_ID, b"").decode() for _, _, headers in raw)


async def read_routed(
    pipeline: Pipeline, expected: int, timeout: float = 90.0, quiet_seconds: float = 2.0
) -> tuple[Counter[EventKey], Counter[str]]:
    """Count routed records by (source, event id), and records without CloudEvents by topic.

    Reads every routed topic with read_committed until EXPECTED events arrived
    and QUIET_SECONDS passed without more, or TIMEOUT ends.
    """
    consumer = AIOKafkaConsumer(
        *routed_topics(pipeline),
        bootstrap_servers=pipeline.config.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
    )
    routed: Counter[EventKey] = Counter()
    others: Counter[str] = Counter()
    await consumer.start()
    deadline = time.monotonic() + timeout
    last_record = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for partition, batch in batches.items():
                for record in batch:
                    key = _event_key(dict(record.headers))
                    if key is None:
                        others[partition.topic] += 1
                    else:
                        routed[key] += 1
                    last_record = time.monotonic()
            quiet = time.monotonic() - last_record > quiet_seconds
            if sum(routed.values()) >= expected and quiet:
                break
    finally:
        await consumer.stop()
    return routed, others


def read_table(pipeline: Pipeline, expected: int, timeout: float = 120.0) -> Counter[str]:
    """Count audit rows by receipt id, once at least EXPECTED rows are stored and stay put.

    Waits 1 s after the count first reaches EXPECTED, so late duplicates show.
    """
    table = pipeline.config.audit.events_table
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = _table_count(pipeline, table)
        if count >= expected:
            break
        time.sleep(0.5)
    time.sleep(1.0)
    rows = query_sink(
        pipeline.config,
        f"SELECT toString(receipt_id), count() FROM {table} GROUP BY receipt_id",
    )
    return Counter({receipt_id: int(copies) for receipt_id, copies in rows})


def _table_count(pipeline: Pipeline, table: str) -> int:
    try:
        rows = query_sink(pipeline.config, f"SELECT count() FROM {table}")
    except httpx.TransportError:
        return -1
    return int(rows[0][0])


async def observe(pipeline: Pipeline, load: LoadResult, timeout: float = 120.0) -> Observed:
    """Read what PIPELINE stored after LOAD, waiting up to TIMEOUT for each part to catch up."""
    accepted = load.accepted
    raw = await read_raw(pipeline, timeout)
    distinct_events = {(o.webhook.source, o.webhook.event_id) for o in accepted}
    routed, others = await read_routed(pipeline, len(distinct_events), timeout)
    table = await asyncio.to_thread(read_table, pipeline, sum(raw.values()), timeout)
    events_table = pipeline.config.audit.events_table
    count, unique = (
        await asyncio.to_thread(
            query_sink,
            pipeline.config,
            f"SELECT count(), uniqExact(receipt_id) FROM {events_table}",
        )
    )[0]
    return Observed(raw, routed, others, table, int(count), int(unique))


def tally(scenario: str, load: LoadResult, observed: Observed, seconds: float) -> FaultResult:
    """Compare what LOAD got a 2xx for with what OBSERVED shows stored."""
    accepted = load.accepted
    accepted_receipts = {o.accepted.receipt_id for o in accepted if o.accepted is not None}
    accepted_events = {(o.webhook.source, o.webhook.event_id) for o in accepted}
    sent_events = {(o.webhook.source, o.webhook.event_id) for o in load.outcomes}
    routed_events = set(observed.routed)
    raw_receipts = set(observed.raw)
    table_receipts = set(observed.table)

    missing_routed = accepted_events - routed_events
    missing_raw = accepted_receipts - raw_receipts
    missing_table = (accepted_receipts | raw_receipts) - table_receipts - {""}
    duplicated_routed = sum(copies - 1 for copies in observed.routed.values())
    # Records without a receipt id (poison records) cannot repeat one.
    duplicated_raw = sum(copies - 1 for receipt, copies in observed.raw.items() if receipt)
    duplicated_table = sum(copies - 1 for copies in observed.table.values())
    details = {
        "missing_routed": len(missing_routed),
        "missing_raw": len(missing_raw),
        "missing_table": len(missing_table),
        "duplicated_routed": duplicated_routed,
        "duplicated_raw": duplicated_raw,
        "duplicated_table": duplicated_table,
        "routed_never_sent": len(routed_events - sent_events),
        "routed_without_2xx": len(routed_events - accepted_events),
        "raw_records": sum(observed.raw.values()),
        "table_count": observed.table_count,
        "table_unique": observed.table_unique,
        "other_routed_records": dict(observed.other_records),
        "given_up": len(load.given_up),
        "unexplained_409": load.unexplained_conflicts(),
        "statuses": dict(load.statuses()),
        "load_seconds": round(load.seconds, 1),
        "examples_missing_routed": sorted(missing_routed)[:3],
        "examples_missing_table": sorted(missing_table)[:3],
    }
    return FaultResult(
        scenario=scenario,
        sent=len(load.outcomes),
        events=len(sent_events),
        accepted=len(accepted),
        receipts=len(accepted_receipts),
        in_topic=len(accepted_events & routed_events),
        in_table=len(accepted_receipts & table_receipts),
        lost=len(missing_routed) + len(missing_raw) + len(missing_table),
        duplicated=duplicated_routed + duplicated_raw + duplicated_table,
        seconds=seconds,
        details=details,
    )


def report(result: FaultResult) -> None:
    """Print RESULT on one line and append it as JSON to $HOOKLINE_FAULT_RESULTS, if set."""
    print(result.line())
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    document = asdict(result)
    document["seconds"] = round(result.seconds, 1)
    with Path(path).open("a") as file:
        file.write(json.dumps(document, default=list) + "\n")


def assert_nothing_lost(
    result: FaultResult,
    *,
    unsent_routed: int = 0,
    other_records: dict[str, int] | None = None,
) -> None:
    """Fail unless every 2xx'd event and receipt is stored once where it belongs.

    UNSENT_ROUTED and OTHER_RECORDS are the routed events and the unrouted
    or dead-lettered records that a test wrote to the raw topic itself.
    """
    details = result.details
    assert details["given_up"] == 0, f"webhooks never accepted: {result.line()} {details}"
    assert details["unexplained_409"] == 0, f"409 for requests that were no copies: {details}"
    assert details["missing_raw"] == 0, f"2xx'd receipts not in the raw topic: {details}"
    assert details["missing_routed"] == 0, f"2xx'd events not routed: {details}"
    assert details["missing_table"] == 0, f"receipts not in the audit table: {details}"
    assert details["duplicated_raw"] == 0, f"receipts twice in the raw topic: {details}"
    assert details["duplicated_routed"] == 0, f"events routed twice: {details}"
    assert details["duplicated_table"] == 0, f"receipts twice in the audit table: {details}"
    assert details["table_count"] == details["table_unique"], f"audit rows repeated: {details}"
    assert details["table_count"] == details["raw_records"], f"table differs from topic: {details}"
    assert details["routed_never_sent"] == unsent_routed, f"routed events never sent: {details}"
    assert details["other_routed_records"] == (other_records or {}), (
        f"records unrouted or dead-lettered: {details}"
    )


async def run_scenario(
    scenario: str,
    pipeline: Pipeline,
    count: int,
    fault: Callable[[LoadClient], Awaitable[None]],
    **client_options: Any,
) -> tuple[FaultResult, LoadResult]:
    """Send COUNT webhooks while FAULT runs, then observe and tally the outcome.

    FAULT gets the running client, so it can wait for a number of 2xx
    responses before it strikes. The load keeps going while it runs. The
    caller adds its own details and passes the result to `report`.
    """
    started = time.monotonic()
    webhooks = make_webhooks(pipeline.config, count)
    client = LoadClient(pipeline.ingest_url, **client_options)
    sending = asyncio.create_task(client.run(webhooks))
    try:
        await fault(client)
    except BaseException:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        raise
    load = await sending
    observed = await observe(pipeline, load)
    result = tally(scenario, load, observed, time.monotonic() - started)
    if result.details["missing_routed"]:
        # Evidence for the failure message: where the lost events were and why they
        # looked like repeats (docs/reliability.md, the router SIGKILL scenario).
        result.details["missing_routed_trace"] = await trace_missing_routed(
            pipeline, result.details["examples_missing_routed"]
        )
    return result, load
