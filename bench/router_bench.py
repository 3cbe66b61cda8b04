"""Router throughput: the Faust router against a plain aiokafka loop over the same records.

Both read the same pre-produced raw topic from its start, each pinned to `SERVER_CPU`, one
after the other, while the broker runs on `LOAD_CPU`. Throughput is taken from the create
times of the records they produce: (records - 1) / (last - first). So start-up, group join
and the router's changelog set-up are left out, and both are measured the same way.

Then a third run routes the same records again under py-spy (`bench.router_profile`), in its
own consumer group, so the profiler does not slow the timed runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import subprocess
import time
from typing import Any

from bench.context import LOAD_CPU, SERVER_CPU, BenchContext, routed_topic
from bench.kafka_tools import TopicCount, count_records, produce_deliveries
from bench.processes import Service
from bench.profile import py_spy_path
from bench.router_profile import RouterRecorder
from bench.stats import ratio
from hookline.config import HooklineConfig
from streams.topics import create_missing_topics, new_admin_client

logger = logging.getLogger(__name__)

SOURCE = "stripe"
LOOP_EXIT_SECONDS = 15.0
# Config label of the profiled router run, which gives it its own group and routed topic.
PROFILE_LABEL = "router-profile"


def run_router_bench(
    context: BenchContext, *, records: int, timeout: float, profile_seconds: int = 0
) -> dict[str, Any]:
    """Pre-produce RECORDS deliveries, then time the router and the baseline loop on them.

    With PROFILE_SECONDS above 0, a third, untimed router run over the same records is
    profiled for PROFILE_SECONDS per recording (see `bench.router_profile`).
    """
    config = context.config("router")
    bootstrap = config.kafka.bootstrap_servers
    loop_topic = "bench.router.loop"
    asyncio.run(_create_topic(config, loop_topic))

    started = time.monotonic()
    produced_bytes = asyncio.run(
        produce_deliveries(bootstrap, config.kafka.raw_topic, config.sources[SOURCE], records)
    )
    logger.info("produced %d raw records in %.1f s", records, time.monotonic() - started)

    router = Service(
        "router",
        context.hookline_command(config, "router"),
        context.log_path("router-bench"),
        cpus=SERVER_CPU,
    )
    router_result = _time_service(
        context, router, bootstrap, routed_topic("router"), records, timeout
    )

    loop = Service(
        "router-loop",
        [
            context.python,
            "-m",
            "bench.router_loop",
            "--bootstrap",
            bootstrap,
            "--source-topic",
            config.kafka.raw_topic,
            "--target-topic",
            loop_topic,
            "--count",
            str(records),
        ],  # fmt: skip
        context.log_path("router-loop"),
        cpus=SERVER_CPU,
    )
    loop_result = _time_service(
        context, loop, bootstrap, loop_topic, records, timeout, exits_when_done=True
    )

    result = {
        "records": records,
        "raw_topic": config.kafka.raw_topic,
        "body_bytes_mean": produced_bytes / records,
        "worker_cpus": SERVER_CPU,
        "broker_cpus": LOAD_CPU,
        "router": router_result,
        "aiokafka_loop": loop_result,
        "ratio_router_to_loop": ratio(
            router_result["records_per_second"] or 0.0, loop_result["records_per_second"] or 0.0
        ),
        "ratio_router_to_loop_by_cpu": ratio(
            loop_result["cpu_us_per_record"] or math.nan,
            router_result["cpu_us_per_record"] or math.nan,
        ),
    }
    if profile_seconds > 0:
        result["profile"] = _profile_router(
            context, config.kafka.raw_topic, records, timeout, profile_seconds
        )
    return result


def _profile_router(
    context: BenchContext, raw_topic: str, records: int, timeout: float, seconds: int
) -> dict[str, Any]:
    """Route RAW_TOPIC again in a new consumer group while py-spy records the router.

    Returns the profile, or why it is missing, because the timed runs stand without it.
    """
    try:
        py_spy_path()
    except RuntimeError as error:
        logger.warning("router profile skipped: %s", error)
        return {"skipped": str(error)}

    config = context.config(PROFILE_LABEL, raw_topic=raw_topic)
    router = Service(
        PROFILE_LABEL,
        context.hookline_command(config, "router"),
        context.log_path(PROFILE_LABEL),
        cpus=SERVER_CPU,
    )
    recorder = RouterRecorder(context.results_dir, seconds)
    try:
        timing = _time_service(
            context,
            router,
            config.kafka.bootstrap_servers,
            routed_topic(PROFILE_LABEL),
            records,
            timeout,
            recorder=recorder,
        )
        return {**recorder.summary(), "router_while_profiling": timing}
    except Exception as error:
        logger.exception("profiling the router failed")
        return {"error": f"{type(error).__name__}: {error}"}


async def _create_topic(config: HooklineConfig, topic: str) -> None:
    admin = new_admin_client(config)
    await admin.start()
    try:
        await create_missing_topics(admin, [topic])
    finally:
        await admin.close()


def _time_service(
    context: BenchContext,
    service: Service,
    bootstrap: str,
    topic: str,
    records: int,
    timeout: float,
    *,
    exits_when_done: bool = False,
    recorder: RouterRecorder | None = None,
) -> dict[str, Any]:
    """Start SERVICE, count its records on TOPIC, stop it and return its rate and costs.

    A service that EXITS_WHEN_DONE may stop by itself after its last record. Any other must
    stay up until then. RECORDER, when given, profiles the service from its first record.
    """
    started = time.time()
    context.start(service)
    rss_samples: list[int] = []
    # (worker CPU seconds, records seen) at the first check that saw output, and at the last.
    cpu_marks: dict[str, tuple[float, int]] = {}

    def on_progress(counted: TopicCount) -> None:
        rss_samples.append(service.rss_bytes())
        if counted.records and service.running():
            mark = (service.cpu_seconds(), counted.records)
            cpu_marks.setdefault("first", mark)
            cpu_marks["last"] = mark
        if recorder is not None:
            recorder.observe(service, counted)
        if not exits_when_done:
            service.check_running()

    try:
        counted: TopicCount = asyncio.run(
            count_records(bootstrap, topic, records, timeout, on_progress=on_progress)
        )
        if exits_when_done and service.process is not None:
            # Let the loop commit and close by itself before the stop.
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(LOOP_EXIT_SECONDS)
    finally:
        if recorder is not None:
            recorder.wait()
        context.services.stop(service)

    if counted.records < records:
        raise RuntimeError(
            f"{service.name} produced {counted.records} of {records} records to {topic} "
            f"within {timeout:.0f} s; see {service.log_path}"
        )
    first_output_after = (
        counted.first_timestamp_ms / 1000 - started if counted.first_timestamp_ms else None
    )
    logger.info("%s: %.0f records/s", service.name, counted.records_per_second or 0.0)
    return {
        "cpu_us_per_record": _cpu_us_per_record(cpu_marks),
        "records_out": counted.records,
        "records_per_second": counted.records_per_second,
        "seconds_first_to_last": (
            (counted.last_timestamp_ms - counted.first_timestamp_ms) / 1000
            if counted.first_timestamp_ms is not None and counted.last_timestamp_ms is not None
            else None
        ),
        "seconds_from_start_to_first_output": first_output_after,
        "rss_max_bytes": max(rss_samples, default=0),
    }


def _cpu_us_per_record(marks: dict[str, tuple[float, int]]) -> float | None:
    """Return worker CPU µs per output record between the first and last progress marks.

    Other processes on the same core disturb this less than records/s. It is approximate:
    with read_committed the count trails the worker by up to one transaction.
    """
    if "first" not in marks:
        return None
    (cpu_first, records_first), (cpu_last, records_last) = marks["first"], marks["last"]
    if records_last <= records_first:
        return None
    return 1e6 * (cpu_last - cpu_first) / (records_last - records_first)
