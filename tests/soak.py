"""Soak run: a long provider-like load on the whole pipeline with a fault every interval.

Starts a broker of its own and ingest, router and sink as processes in a
temporary folder (or --data-dir), sends signed webhooks at --rate per second
for --minutes, and every --fault-interval seconds strikes the next fault of
`FAULTS` in turn. A supervisor task restarts any process that exits, as
`hookline run` does. At the end it checks, like the fault tests, that every
2xx'd event is routed once and every receipt is in the audit table once, and
prints one result line (appended as JSON to --results or
$HOOKLINE_FAULT_RESULTS). Exit status 0 means nothing was lost or duplicated.

    .venv/bin/python tests/soak.py --minutes 10 --rate 120 --results soak.jsonl
    .venv/bin/python -m pytest -m soak -s     # the same through pytest, 10 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from fault_checks import RESULTS_ENV, FaultResult, assert_nothing_lost, observe, report, tally
from load_client import LoadClient, LoadResult, Outcome, make_webhooks
from pipeline_support import (
    ROUTER_READY_TEXT,
    Pipeline,
    copy_config,
    free_port,
    running_broker,
    running_pipeline,
)

from hookline.broker import LocalBroker
from sinks.faults import KILL_AFTER_INSERTS_ENV

logger = logging.getLogger("soak")

BROKER_READY_SECONDS = 120.0
BROKER_DOWN_SECONDS = 8.0
# Webhooks per load round; each round's webhooks are signed just before it starts.
ROUND_WEBHOOKS = 3000

Fault = Callable[["Soak"], Awaitable[None]]


@dataclasses.dataclass
class Soak:
    """The running pipeline, its broker and the faults struck so far."""

    pipeline: Pipeline
    broker: LocalBroker
    folder: Path
    struck: list[str] = dataclasses.field(default_factory=list)
    # Held by a fault while it stops and starts processes, so the supervisor leaves them alone.
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)

    async def wait_router(self, instance: str, start: int) -> None:
        await asyncio.to_thread(
            self.pipeline.wait_log, instance, ROUTER_READY_TEXT, BROKER_READY_SECONDS, start
        )


async def kill_router(soak: Soak) -> None:
    start = soak.pipeline.log_size("router")
    soak.pipeline.kill("router")
    soak.pipeline.start("router")
    await soak.wait_router("router", start)


async def rebalance_router(soak: Soak) -> None:
    """Start a second router worker, then stop the first one; the second stays."""
    pipeline = soak.pipeline
    second = copy_config(
        pipeline.config_path,
        f"router-{len(soak.struck)}.toml",
        web_port=free_port(),
        data_dir=str(soak.folder / f"router-{len(soak.struck)}"),
    )
    start = pipeline.log_size("router-2")
    pipeline.start("router", instance="router-2", config_path=second)
    await soak.wait_router("router-2", start)
    await asyncio.to_thread(pipeline.stop, "router")
    # The second worker takes the first one's name, so later faults strike it.
    pipeline.processes["router"] = pipeline.processes.pop("router-2")
    pipeline.launches["router"] = pipeline.launches.pop("router-2")


async def kill_sink_after_insert(soak: Soak) -> None:
    pipeline = soak.pipeline
    await asyncio.to_thread(pipeline.stop, "sink")
    process = pipeline.start("sink", env={KILL_AFTER_INSERTS_ENV: "3"})
    await asyncio.to_thread(process.wait, 120.0)
    pipeline.start("sink")


async def kill_ingest(soak: Soak) -> None:
    soak.pipeline.kill("ingest")
    await asyncio.sleep(1.0)
    soak.pipeline.start("ingest")
    await asyncio.to_thread(soak.pipeline.wait_ready)


async def kill_broker(soak: Soak) -> None:
    await asyncio.to_thread(soak.broker.kill)
    await asyncio.sleep(BROKER_DOWN_SECONDS)
    await asyncio.to_thread(soak.broker.start)
    await asyncio.to_thread(soak.broker.wait_ready, BROKER_READY_SECONDS)


FAULTS: dict[str, Fault] = {
    "router SIGKILL": kill_router,
    "sink SIGKILL after insert": kill_sink_after_insert,
    "ingest SIGKILL": kill_ingest,
    "broker SIGKILL": kill_broker,
    "router rebalance": rebalance_router,
}


async def strike_faults(soak: Soak, interval: float, stop: asyncio.Event) -> None:
    """Strike the faults in turn, one every INTERVAL seconds, until STOP is set."""
    names = list(FAULTS)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        name = names[len(soak.struck) % len(names)]
        logger.info("fault %d: %s", len(soak.struck) + 1, name)
        async with soak.lock:
            await FAULTS[name](soak)
        soak.struck.append(name)


async def supervise(soak: Soak, stop: asyncio.Event) -> None:
    """Restart exited processes every second, as the `hookline run` supervisor does."""
    while not stop.is_set():
        async with soak.lock:
            restarted = soak.pipeline.restart_exited()
        for instance in restarted:
            logger.warning("%s exited; restarted it", instance)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def _without_payload(outcome: Outcome) -> Outcome:
    # The checks need the source, event id and attempts only, so bodies need not stay in memory.
    webhook = dataclasses.replace(outcome.webhook, headers={}, body=b"")
    return Outcome(webhook, outcome.attempts)


async def send_rounds(pipeline: Pipeline, seconds: float, rate: float) -> LoadResult:
    """Send webhooks at RATE per second in rounds until SECONDS have passed."""
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    outcomes: list[Outcome] = []
    while time.monotonic() < deadline:
        count = min(ROUND_WEBHOOKS, max(1, int((deadline - time.monotonic()) * rate)))
        webhooks = make_webhooks(pipeline.config, count, repeat_gap=min(900, count // 3))
        result = await LoadClient(pipeline.ingest_url, rate=rate, max_seconds=180.0).run(webhooks)
        outcomes.extend(_without_payload(outcome) for outcome in result.outcomes)
        logger.info(
            "round of %d deliveries done, %d of them 2xx", len(webhooks), len(result.accepted)
        )
    return LoadResult(outcomes, time.monotonic() - started)


async def run_soak(folder: Path, minutes: float, rate: float, fault_interval: float) -> FaultResult:
    """Run the soak in FOLDER and return its tally; the caller reports and checks it."""
    started = time.monotonic()
    with (
        running_broker(folder / "kafka") as broker,
        running_pipeline(broker, folder) as pipeline,
    ):
        soak = Soak(pipeline, broker, folder)
        stop = asyncio.Event()
        background = [
            asyncio.create_task(strike_faults(soak, fault_interval, stop)),
            asyncio.create_task(supervise(soak, stop)),
        ]
        try:
            load = await send_rounds(pipeline, minutes * 60.0, rate)
        finally:
            stop.set()
            await asyncio.gather(*background)

        observed = await observe(pipeline, load, timeout=300.0)
        result = tally(f"soak {minutes:g} min", load, observed, time.monotonic() - started)
        result.details["faults"] = soak.struck
        result.details["restarts"] = dict(pipeline.restarts)
        return result


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument("--rate", type=float, default=120.0, help="webhooks per second")
    parser.add_argument(
        "--fault-interval", type=float, default=60.0, help="seconds between faults (default 60)"
    )
    parser.add_argument("--data-dir", type=Path, help="folder for the run (default: a temp one)")
    parser.add_argument("--results", type=Path, help=f"JSON lines file (default ${RESULTS_ENV})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak from the command line; return 0 when nothing was lost or duplicated."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.results:
        os.environ[RESULTS_ENV] = str(args.results)
    # SIGTERM ends the run through KeyboardInterrupt, so every process is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.ExitStack() as stack:
        folder = args.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run_soak(folder, args.minutes, args.rate, args.fault_interval))
    report(result)
    try:
        assert_nothing_lost(result)
    except AssertionError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
