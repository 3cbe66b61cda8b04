"""End to end: latency from ingest's 200 to the routed record and to the stored row, and memory.

The whole pipeline runs unpinned: the broker, `hookline sink`, `hookline router` and
`hookline ingest`, each a process of its own. The benchmark adds:

- `bench.load_client`, a process that sends signed Stripe requests at a fixed rate (open
  loop) and notes the wall-clock time of each 200 response, by event id and receipt id;
- two consumers of the routed topic in this process, which note when each event arrives:
  one with read_committed (what a subscriber sees, after the router's transaction commits)
  and one with read_uncommitted (when the router produced the record);
- after the load, the audit table gives each row's `inserted_at` (now64() of its insert),
  the moment the row became queryable.

All times come from the same machine clock. The resident memory of the four processes is
sampled at idle and every few seconds under load; the load phase doubles as the soak test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.context import BenchContext, routed_topic, wait_for_http
from bench.load_client import SECRET_ENV_VAR
from bench.processes import Service, rss_bytes, set_affinity
from bench.stats import percentile, slope
from hookline.config import HooklineConfig
from sinks.errors import QueryError
from sinks.query import run_query
from streams.envelope import CE_ID

logger = logging.getLogger(__name__)

LABEL = "e2e"
WARMUP_EVENTS = 20
WARMUP_TIMEOUT_SECONDS = 180.0
DRAIN_TIMEOUT_SECONDS = 30.0
IDLE_SECONDS = 5.0
CLIENT_CONNECTIONS = 64


@dataclass
class Observations:
    """Times (Unix seconds) noted by the client and by the routed-topic consumers."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    committed: dict[str, float] = field(default_factory=dict)
    uncommitted: dict[str, float] = field(default_factory=dict)

    def accepted(self) -> list[dict[str, Any]]:
        """Return the requests that got a 200."""
        return [entry for entry in self.sent if entry["status"] == 200]


@dataclass
class Pipeline:
    """The started processes of the end-to-end pipeline."""

    config: HooklineConfig
    services: dict[str, Service]
    broker_pid: int

    def rss_bytes(self) -> dict[str, int]:
        """Return the resident memory of the broker and each service."""
        sizes = {"broker": rss_bytes(self.broker_pid)}
        sizes.update({name: service.rss_bytes() for name, service in self.services.items()})
        return sizes

    def check_running(self) -> None:
        """Raise RuntimeError when a service exited."""
        for service in self.services.values():
            service.check_running()


def start_pipeline(context: BenchContext) -> Pipeline:
    """Unpin the broker, then start sink, router and ingest unpinned and wait for ingest."""
    set_affinity(context.broker.pid, range(os.cpu_count() or 1))
    config = context.config(LABEL)
    services = {}
    for name in ("sink", "router", "ingest"):
        services[name] = context.start(
            Service(name, context.hookline_command(config, name), context.log_path(f"e2e-{name}"))
        )
    wait_for_http(services["ingest"], f"http://127.0.0.1:{config.ingest.port}/readyz")
    return Pipeline(config, services, context.broker.pid)


async def _watch(consumer: AIOKafkaConsumer, arrivals: dict[str, float]) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        now = time.time()
        for records in batches.values():
            for record in records:
                for name, value in record.headers or ():
                    if name == CE_ID:
                        arrivals.setdefault(value.decode(), now)


async def _routed_consumer(config: HooklineConfig, isolation_level: str) -> AIOKafkaConsumer:
    # No group: the consumer gets every partition and starts at the end of each.
    consumer = AIOKafkaConsumer(
        routed_topic(LABEL),
        bootstrap_servers=config.kafka.bootstrap_servers,
        group_id=None,
        isolation_level=isolation_level,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    return consumer


async def _wait(condition: Callable[[], bool], timeout: float, check: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        if condition():
            return True
        await asyncio.sleep(0.1)
    return condition()


async def _run_client(
    context: BenchContext,
    pipeline: Pipeline,
    *,
    rate: float,
    seconds: float,
    name: str,
    on_interval: Callable[[float], None] | None = None,
    interval_seconds: float = 5.0,
) -> list[dict[str, Any]]:
    """Run `bench.load_client` at RATE for SECONDS; call ON_INTERVAL while it runs."""
    config = pipeline.config
    output = context.work_dir / f"{name}.json"
    command = [
        context.python, "-m", "bench.load_client",
        "--url", f"http://127.0.0.1:{config.ingest.port}/webhooks/stripe",
        "--rate", str(rate), "--seconds", str(seconds),
        "--connections", str(CLIENT_CONNECTIONS), "--output", str(output),
    ]  # fmt: skip
    env = {**os.environ, SECRET_ENV_VAR: config.sources["stripe"].secrets[0]}
    with context.log_path(f"e2e-{name}").open("ab") as log_file:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=log_file, stderr=log_file, env=env, start_new_session=True
        )
    started = time.monotonic()
    try:
        while process.returncode is None:
            if on_interval is not None:
                on_interval(time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), interval_seconds)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"bench.load_client exited with code {process.returncode}")
    entries: list[dict[str, Any]] = json.loads(output.read_text())
    return entries


async def _run_load(
    context: BenchContext, pipeline: Pipeline, *, rate: float, seconds: float, rss_interval: float
) -> dict[str, Any]:
    config = pipeline.config
    observed = Observations()
    consumers = [
        await _routed_consumer(config, "read_committed"),
        await _routed_consumer(config, "read_uncommitted"),
    ]
    watchers = [
        asyncio.create_task(_watch(consumers[0], observed.committed)),
        asyncio.create_task(_watch(consumers[1], observed.uncommitted)),
    ]
    try:
        # Warm-up: the router's first transaction and the sink's table come up here.
        warmup = await _run_client(
            context, pipeline, rate=WARMUP_EVENTS, seconds=1.0, name="warmup-client"
        )
        warm = {entry["event_id"] for entry in warmup if entry["status"] == 200}
        routed = await _wait(
            lambda: bool(warm) and warm <= observed.committed.keys(),
            WARMUP_TIMEOUT_SECONDS,
            pipeline.check_running,
        )
        if not routed:
            raise RuntimeError(
                f"warm-up events were not routed within {WARMUP_TIMEOUT_SECONDS:.0f} s; "
                f"see {pipeline.services['router'].log_path}"
            )
        await asyncio.sleep(IDLE_SECONDS)
        idle_rss = pipeline.rss_bytes()

        samples: list[dict[str, Any]] = []

        def sample(elapsed: float) -> None:
            pipeline.check_running()
            samples.append({"seconds": round(elapsed, 1), **pipeline.rss_bytes()})

        observed.sent = await _run_client(
            context,
            pipeline,
            rate=rate,
            seconds=seconds,
            name="load-client",
            on_interval=sample,
            interval_seconds=rss_interval,
        )
        accepted = {entry["event_id"] for entry in observed.accepted()}
        await _wait(
            lambda: accepted <= observed.committed.keys(),
            DRAIN_TIMEOUT_SECONDS,
            pipeline.check_running,
        )
    finally:
        for watcher in watchers:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        for consumer in consumers:
            await consumer.stop()
    return {"idle_rss": idle_rss, "samples": samples, "observed": observed}


def _latencies_ms(sent: dict[str, float], arrived: dict[str, float]) -> list[float]:
    return [(arrived[key] - moment) * 1000 for key, moment in sent.items() if key in arrived]


def _latency_summary(values: list[float], expected: int) -> dict[str, Any]:
    return {
        "events": len(values),
        "missing": expected - len(values),
        "p50_ms": percentile(values, 0.5),
        "p99_ms": percentile(values, 0.99),
        "max_ms": max(values, default=float("nan")),
    }


def _stored_latencies(config: HooklineConfig, ok_by_receipt: dict[str, float]) -> list[float]:
    expected = len(ok_by_receipt)
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    rows: list[Any] = []
    while time.monotonic() < deadline:
        try:
            _, rows = run_query(
                config,
                "SELECT toString(receipt_id), toUnixTimestamp64Micro(inserted_at) "
                "FROM webhook_events",
            )
        except QueryError:
            rows = []
        if sum(1 for receipt, _ in rows if receipt in ok_by_receipt) >= expected:
            break
        time.sleep(0.5)
    inserted = {receipt: micros / 1e6 for receipt, micros in rows}
    return _latencies_ms(ok_by_receipt, inserted)


def memory_growth(samples: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Return first, last and max RSS in MiB and the slope over the second half, per process."""
    growth: dict[str, Any] = {}
    second_half = samples[len(samples) // 2 :]
    for name in names:
        values = [sample[name] / 2**20 for sample in samples]
        points = [(sample["seconds"] / 60, sample[name] / 2**20) for sample in second_half]
        growth[name] = {
            "first_mib": values[0] if values else None,
            "last_mib": values[-1] if values else None,
            "max_mib": max(values, default=None),
            "second_half_slope_mib_per_minute": slope(points),
        }
    return growth


def run_pipeline_bench(
    context: BenchContext, *, rate: float, seconds: float, rss_interval: float
) -> dict[str, Any]:
    """Run the pipeline at RATE requests/s for SECONDS and return latencies and memory."""
    pipeline = start_pipeline(context)
    try:
        load = asyncio.run(
            _run_load(context, pipeline, rate=rate, seconds=seconds, rss_interval=rss_interval)
        )
        observed: Observations = load["observed"]
        accepted = observed.accepted()
        answered = {entry["event_id"]: entry["answered_at"] for entry in accepted}
        stored = _stored_latencies(
            pipeline.config, {entry["receipt_id"]: entry["answered_at"] for entry in accepted}
        )
    finally:
        for service in reversed(list(pipeline.services.values())):
            context.services.stop(service)

    response_ms = [(entry["answered_at"] - entry["sent_at"]) * 1000 for entry in accepted]
    names = ["broker", *pipeline.services]
    return {
        "rate_per_second": rate,
        "seconds": seconds,
        "sent": len(observed.sent),
        "accepted": len(accepted),
        "statuses": dict(Counter(str(entry["status"]) for entry in observed.sent)),
        "placement": "every process unpinned on both cores, the load client and the observing "
        "consumers included",
        "ingest_response": _latency_summary(response_ms, len(accepted)),
        "to_routed_read_committed": _latency_summary(
            _latencies_ms(answered, observed.committed), len(accepted)
        ),
        "to_routed_read_uncommitted": _latency_summary(
            _latencies_ms(answered, observed.uncommitted), len(accepted)
        ),
        "to_stored_row": _latency_summary(stored, len(accepted)),
        "rss_idle_mib": {name: size / 2**20 for name, size in load["idle_rss"].items()},
        "rss_samples": load["samples"],
        "rss_interval_seconds": rss_interval,
        "memory_growth": memory_growth(load["samples"], names),
    }
