"""Fault tests: router, audit sink and ingest crash or rebalance, the audit store is down,
or poison records reach the raw topic, all under load.

Each test runs ingest, router and sink as processes from a config of their
own, on a broker that this module starts. It sends a few thousand signed
webhooks with provider-like retries while the fault happens. Then it checks,
by receipt id and by provider event id, that nothing 2xx'd is missing or
stored twice (see `fault_checks`). Run with `-s` to see each scenario's
result line, and set $HOOKLINE_FAULT_RESULTS to a file that collects them
as JSON. `test_faults_broker.py` kills the broker itself.

The audit store outage: no ClickHouse server runs here, so the outage is a
sink whose DSN points at a loopback port where nothing listens (every
connection is refused). During it the test checks that the sink stays up,
retries with growing delays, commits no Kafka offset and keeps its memory
bounded, and that every routed topic is complete without it. The sink is
then restarted with a working embedded store (chDB), which takes the place
of ClickHouse coming back, and must store every record once. It does not
cover an outage that starts or ends while the sink has a batch in memory,
or a server that times out or fails mid-insert. `test_sink_kafka.py`
injects insert failures in-process for those.

Poison records: a producer of the test writes six kinds of record to every
partition of the raw topic while webhooks keep arriving through ingest:

- `not-json`: valid headers and a body that is not JSON. The router routes
  on headers only, so it is routed like any event of its type.
- `no-event-id`: valid headers without event id and type, as ingest writes
  an unparsable body. It goes to the unrouted topic.
- `no-receipt-id`, `no-headers`, `bad-time`: a required `hookline-*` header
  is missing or malformed. They go to the dead-letter topic.
- `huge`: valid headers and a 5 MiB body, as a large GitHub push would have.
  It is routed.

Every one of them is stored in the audit table (the last three with
`parse_error` set), and every webhook after them is still routed, so no
partition is stuck.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fault_checks import assert_nothing_lost, read_routed, report, run_scenario
from load_client import LoadClient
from pipeline_support import (
    ROUTER_READY_TEXT,
    Pipeline,
    copy_config,
    free_port,
    query_sink,
    running_broker,
    running_pipeline,
)

from hookline import records
from hookline.broker import MAX_RECORD_BYTES, LocalBroker
from sinks.faults import KILL_AFTER_INSERTS_ENV

pytestmark = pytest.mark.integration

EVENTS = 2000
RESTART_READY_SECONDS = 120.0
# Growth of the sink's resident memory during the store outage that the test accepts.
MAX_RSS_GROWTH_BYTES = 64 * 1024 * 1024
RETRY_LINE = re.compile(r"ClickHouse (?:create tables|insert) failed .* retrying in ([0-9.]+) s")
PARTITIONS = 4
HUGE_BODY_BYTES = 5 * 1024 * 1024
ROUTED_KINDS = ("not-json", "huge")
DEAD_LETTER_KINDS = ("no-receipt-id", "no-headers", "bad-time")
UNROUTED_KINDS = ("no-event-id",)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with running_broker(tmp_path_factory.mktemp("faults-pipeline-kafka")) as running:
        yield running


@pytest.fixture
def pipeline(broker: LocalBroker, tmp_path: Path) -> Iterator[Pipeline]:
    with running_pipeline(broker, tmp_path) as running:
        yield running


async def restart_router(
    pipeline: Pipeline, instance: str = "router", config_path: Path | None = None
) -> None:
    """Start INSTANCE of the router (again) and wait until its worker is ready."""
    start = pipeline.log_size(instance)
    pipeline.start("router", instance=instance, config_path=config_path)
    await asyncio.to_thread(
        pipeline.wait_log, instance, ROUTER_READY_TEXT, RESTART_READY_SECONDS, start
    )


def assert_no_offset_gaps(pipeline: Pipeline, instance: str) -> None:
    """Fail if Faust took offsets of the raw topic as a gap in INSTANCE's log.

    The raw topic has no gaps, so a logged one is a range Faust could commit
    past without routing it.
    """
    log = pipeline.log_path(instance).read_text(errors="replace")
    gaps = [line for line in log.splitlines() if "takes them as a gap" in line]
    assert gaps == []


def assert_repeats_logged(pipeline: Pipeline, *instances: str) -> None:
    """Fail unless the router's DEBUG lines on dropped repeats reach the logs of INSTANCES.

    The loss traces of the fault checks quote those lines, and the load
    contains repeats, so at least one must be there.
    """
    logs = [pipeline.log_path(instance).read_text(errors="replace") for instance in instances]
    assert any("Dropped repeat of" in log for log in logs)


async def test_router_sigkill_mid_stream(pipeline: Pipeline) -> None:
    async def kill_and_restart(client: LoadClient) -> None:
        await client.wait_accepted(EVENTS // 3)
        await asyncio.to_thread(pipeline.kill, "router")
        await asyncio.sleep(1.0)
        await restart_router(pipeline)

    result, _ = await run_scenario("router SIGKILL", pipeline, EVENTS, kill_and_restart)

    report(result)
    assert_nothing_lost(result)
    assert_no_offset_gaps(pipeline, "router")
    assert_repeats_logged(pipeline, "router")
    pipeline.assert_running()


async def test_router_rebalance_two_workers(pipeline: Pipeline, tmp_path: Path) -> None:
    # The second worker needs a web port and data folder of its own.
    second = copy_config(
        pipeline.config_path,
        "router-2.toml",
        web_port=free_port(),
        data_dir=str(tmp_path / "router-2"),
    )

    async def join_then_leave(client: LoadClient) -> None:
        await client.wait_accepted(EVENTS // 5)
        await restart_router(pipeline, "router-2", config_path=second)
        await client.wait_accepted(EVENTS * 3 // 5)
        # The first worker leaves cleanly, so its partitions move to the second.
        exit_code = await asyncio.to_thread(pipeline.stop, "router")
        assert exit_code == 0

    result, _ = await run_scenario(
        "router rebalance (join, then leave)", pipeline, EVENTS, join_then_leave, rate=120.0
    )

    report(result)
    assert_nothing_lost(result)
    assert_no_offset_gaps(pipeline, "router")
    assert_no_offset_gaps(pipeline, "router-2")
    assert_repeats_logged(pipeline, "router", "router-2")
    pipeline.assert_running("router-2")


async def test_sink_sigkill_between_insert_and_commit(pipeline: Pipeline) -> None:
    exit_codes: list[int | None] = []

    async def kill_twice(client: LoadClient) -> None:
        await client.wait_accepted(EVENTS // 5)
        await asyncio.to_thread(pipeline.stop, "sink")
        # Each run kills itself after its Nth insert, before its Kafka commit. A flush inserts
        # once per partition with rows, and the backlog of the stopped sink spans all four
        # partitions, so the first flush of each run reaches N even after the load ended.
        for inserts in ("3", "2"):
            process = pipeline.start("sink", env={KILL_AFTER_INSERTS_ENV: inserts})
            exit_codes.append(await asyncio.to_thread(process.wait, 120.0))
        pipeline.start("sink")
        await asyncio.to_thread(pipeline.wait_sink)

    result, _ = await run_scenario("sink SIGKILL after insert", pipeline, EVENTS, kill_twice)

    result.details["sink_exit_codes"] = exit_codes
    report(result)
    assert exit_codes == [-signal.SIGKILL, -signal.SIGKILL]
    assert_nothing_lost(result)
    pipeline.assert_running()


async def test_ingest_sigkill_mid_request(pipeline: Pipeline) -> None:
    killed_at: list[float] = []

    async def kill_and_restart(client: LoadClient) -> None:
        await client.wait_accepted(EVENTS // 3)
        await asyncio.to_thread(pipeline.kill, "ingest")
        killed_at.append(time.monotonic())
        await asyncio.sleep(1.0)
        pipeline.start("ingest")
        await asyncio.to_thread(pipeline.wait_ready)

    result, load = await run_scenario("ingest SIGKILL", pipeline, EVENTS, kill_and_restart)

    # Requests in flight at the kill were cut off, and the client retried them.
    cut_off = [
        attempt
        for attempt in load.attempts()
        if attempt.status is None
        and attempt.error != "ConnectError"
        and attempt.started < killed_at[0]
    ]
    result.details["cut_off_requests"] = len(cut_off)
    report(result)
    assert cut_off, f"no request was in flight at the kill: {load.statuses()}"
    assert_nothing_lost(result)
    pipeline.assert_running()


@pytest.fixture
def storeless_pipeline(broker: LocalBroker, tmp_path: Path) -> Iterator[Pipeline]:
    """A pipeline whose sink's audit store refuses every connection."""
    refused = f"http://default@127.0.0.1:{free_port()}/default"
    with running_pipeline(broker, tmp_path, dsn=refused) as running:
        yield running


def resident_bytes(pid: int) -> int:
    """Return the resident set size of process PID, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS line for process {pid}")


async def committed_offsets(pipeline: Pipeline) -> dict[object, object]:
    """Return the offsets the audit sink's consumer group has committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline.config.kafka.bootstrap_servers)
    await admin.start()
    try:
        return dict(await admin.list_consumer_group_offsets(pipeline.config.audit.group_id))
    finally:
        await admin.close()


@dataclass
class Outage:
    """What the test saw while the sink could not reach its store."""

    accepted: int = 0
    routed: int = 0
    committed: dict[object, object] = field(default_factory=dict)
    rss_growth: int = 0
    retry_delays: list[float] = field(default_factory=list)


async def test_sink_store_outage_then_recovery(
    storeless_pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline = storeless_pipeline
    outage = Outage()

    async def outage_then_recovery(client: LoadClient) -> None:
        sink_pid = pipeline.processes["sink"].pid
        samples = [resident_bytes(sink_pid)]
        while not client.finished.is_set():
            await asyncio.sleep(1.0)
            samples.append(resident_bytes(sink_pid))
        outage.accepted = client.accepted_count
        outage.rss_growth = max(samples) - samples[0]

        # The router does not depend on the store, so every routed topic is complete.
        events = {(webhook.source, webhook.event_id) for webhook in client.webhooks}
        routed, _ = await read_routed(pipeline, len(events), timeout=90.0)
        outage.routed = len(routed)
        outage.committed = await committed_offsets(pipeline)
        sink_log = pipeline.log_tail("sink", 1_000_000)
        outage.retry_delays = [float(delay) for delay in RETRY_LINE.findall(sink_log)]
        pipeline.assert_running("sink")

        # ClickHouse is back: the sink starts again with a store that works.
        await asyncio.to_thread(pipeline.stop, "sink")
        working = copy_config(
            pipeline.config_path, "hookline-chdb.toml", dsn=f"chdb://{tmp_path / 'clickhouse'}"
        )
        pipeline.start("sink", config_path=working)
        await asyncio.to_thread(pipeline.wait_sink)

    result, load = await run_scenario(
        "ClickHouse unavailable, then back", pipeline, EVENTS, outage_then_recovery
    )
    distinct_events = len({(o.webhook.source, o.webhook.event_id) for o in load.outcomes})
    result.details["routed_while_down"] = outage.routed
    result.details["rss_growth_mib"] = round(outage.rss_growth / 2**20, 1)
    result.details["retries_while_down"] = len(outage.retry_delays)
    result.details["max_retry_delay"] = max(outage.retry_delays, default=0.0)
    report(result)

    assert outage.accepted == len(load.outcomes)
    assert outage.routed == distinct_events
    assert outage.committed == {}
    assert outage.rss_growth < MAX_RSS_GROWTH_BYTES
    assert len(outage.retry_delays) >= 3, pipeline.log_tail("sink")
    assert outage.retry_delays == sorted(outage.retry_delays), "retry delays did not grow"
    assert_nothing_lost(result)


def valid_headers(source: str, event_id: str | None, event_type: str | None) -> dict[str, bytes]:
    headers = {
        records.RECEIPT_ID: str(uuid.uuid4()).encode(),
        records.SOURCE: source.encode(),
        records.RECEIVED_AT: records.format_time(datetime.now(UTC)).encode(),
        records.CONTENT_TYPE: b"application/json",
        records.REMOTE_ADDR: b"127.0.0.1",
        records.REQUEST_HEADERS: b"{}",
    }
    if event_id is not None:
        headers[records.EVENT_ID] = event_id.encode()
    if event_type is not None:
        headers[records.EVENT_TYPE] = event_type.encode()
    return headers


def poison_records(partition: int) -> dict[str, tuple[bytes, dict[str, bytes]]]:
    """Return the value and headers of each kind of poison record for PARTITION."""
    marker = f"poison-{partition}"
    huge = orjson.dumps({"id": marker, "padding": "x" * HUGE_BODY_BYTES})
    no_receipt = valid_headers("stripe", f"{marker}-no-receipt", "payment_intent.succeeded")
    del no_receipt[records.RECEIPT_ID]
    bad_time = valid_headers("stripe", f"{marker}-bad-time", "payment_intent.succeeded")
    bad_time[records.RECEIVED_AT] = b"yesterday"
    return {
        "not-json": (
            b"\x00\xff not json {",
            valid_headers("stripe", f"{marker}-not-json", "payment_intent.succeeded"),
        ),
        "no-event-id": (b"{}", valid_headers("stripe", None, None)),
        "no-receipt-id": (b'{"id": "evt"}', no_receipt),
        "no-headers": (b'{"id": "evt"}', {}),
        "bad-time": (b'{"id": "evt"}', bad_time),
        "huge": (huge, valid_headers("github", f"{marker}-huge", "push")),
    }


async def produce_poison(pipeline: Pipeline) -> None:
    """Write every kind of poison record to every partition of the raw topic."""
    producer = AIOKafkaProducer(
        bootstrap_servers=pipeline.config.kafka.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_RECORD_BYTES,
    )
    await producer.start()
    try:
        for partition in range(PARTITIONS):
            for kind, (value, headers) in poison_records(partition).items():
                await producer.send_and_wait(
                    pipeline.config.kafka.raw_topic,
                    value,
                    key=f"poison:{kind}".encode(),
                    partition=partition,
                    headers=list(headers.items()),
                )
    finally:
        await producer.stop()


async def test_poison_records_mid_load(pipeline: Pipeline) -> None:
    injected_at: list[float] = []

    async def inject(client: LoadClient) -> None:
        await client.wait_accepted(EVENTS // 4)
        await produce_poison(pipeline)
        injected_at.append(time.monotonic())

    result, load = await run_scenario("poison records in webhooks.raw", pipeline, EVENTS, inject)

    config = pipeline.config
    table = config.audit.events_table
    parse_errors, huge_rows = query_sink(
        config,
        f"SELECT countIf(parse_error != ''), countIf(body_size >= {HUGE_BODY_BYTES}) FROM {table}",
    )[0]
    accepted_after = [
        outcome
        for outcome in load.accepted
        if outcome.accepted is not None and outcome.accepted.started > injected_at[0]
    ]
    result.details["poison_records"] = PARTITIONS * 6
    result.details["poison_rows_with_parse_error"] = parse_errors
    result.details["huge_rows"] = huge_rows
    result.details["accepted_after_poison"] = len(accepted_after)
    report(result)

    assert len(accepted_after) > EVENTS // 2
    assert parse_errors == PARTITIONS * len(DEAD_LETTER_KINDS)
    assert huge_rows == PARTITIONS
    assert_nothing_lost(
        result,
        unsent_routed=PARTITIONS * len(ROUTED_KINDS),
        other_records={
            config.router.dead_letter_topic: PARTITIONS * len(DEAD_LETTER_KINDS),
            config.router.unrouted_topic: PARTITIONS * len(UNROUTED_KINDS),
        },
    )
