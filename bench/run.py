"""Run the whole benchmark suite in one go: `python -m bench.run` (what `make bench` runs).

Stages, in order, against one Kafka broker that the run starts on free loopback ports:

1. ingest: hookline, bare Litestar and Express pinned to CPU 0, wrk and the broker on CPU 1;
2. profile: py-spy on the pinned hookline ingest under the same load;
3. router: Faust router and a plain aiokafka loop over the same pre-produced records, then
   py-spy on a second, untimed router run over them;
4. sink-store and sink: the audit store layer alone, then the whole sink from Kafka;
5. scaling: hookline and bare Litestar with two uvicorn workers each, unpinned;
6. e2e: the whole pipeline at a fixed rate, for latency, memory and the soak;
7. baseline, only when named in --stages: this checkout's ingest against the ingest of the
   commit named by --baseline-ref, side by side (see bench.experiments).

Results go to `<results-dir>/results.json` (rewritten after every stage, so a failed run
keeps what it measured) and `<results-dir>/summary.md`. The run stops every process it
started when it ends, fails or is interrupted with Ctrl-C or SIGTERM. It exits with status
1 when a stage failed; the error is in the results and the summary.

The defaults take about 10 minutes on 2 cores. `--soak-seconds 600` makes the end-to-end
stage the 10-minute soak.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import (
    experiments,
    ingest_bench,
    machine,
    pipeline_bench,
    report,
    router_bench,
    sink_bench,
)
from bench.context import LOAD_CPU, SERVER_CPU, BenchContext
from bench.processes import ServiceSet, set_affinity
from bench.profile import profile_ingest, py_spy_path
from bench.wrk import require_wrk
from hookline.broker import LocalBroker, find_free_ports
from hookline.config import HooklineConfig

logger = logging.getLogger(__name__)

STAGES = ("ingest", "profile", "router", "sink-store", "sink", "scaling", "e2e", "baseline")
# baseline measures a change to ingest (see bench.experiments), so it runs only on request.
DEFAULT_STAGES = STAGES[:-1]
DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"
BROKER_READY_SECONDS = 120.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line of `python -m bench.run`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_RESULTS_DIR,
        help="folder for results.json, summary.md, logs and the profile",
    )
    parser.add_argument(
        "--stages",
        default=",".join(DEFAULT_STAGES),
        help=f"comma-separated stages to run, of {', '.join(STAGES)}",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the ingest comparison; each server runs once per round",
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=10,
        help="seconds per wrk run; signatures stay valid for 300 s",
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument(
        "--scaling-rounds", type=int, default=3, help="rounds of the two-worker comparison"
    )
    parser.add_argument(
        "--profile-seconds",
        type=int,
        default=10,
        help="seconds of each py-spy recording (flame graph, then stacks)",
    )
    parser.add_argument(
        "--router-records",
        type=int,
        default=40_000,
        help="raw records for the router and whole-sink stages",
    )
    parser.add_argument(
        "--router-profile-seconds",
        type=int,
        default=3,
        help="seconds of each py-spy recording of the router (stacks, then flame graph), taken "
        "while an untimed router run routes the records again; 0 skips the profile",
    )
    parser.add_argument(
        "--store-rows",
        type=int,
        default=200_000,
        help="rows inserted per batch size in the store-layer stage",
    )
    parser.add_argument(
        "--store-batch-sizes",
        default="1000,5000,20000,50000",
        help="comma-separated rows per insert for the store-layer stage",
    )
    parser.add_argument(
        "--sink-batch-rows",
        default="1000,5000",
        help="comma-separated audit.batch_max_rows values for the sink stage",
    )
    parser.add_argument(
        "--baseline-ref",
        default="HEAD",
        help="git revision whose ingest the baseline stage compares with this checkout's",
    )
    parser.add_argument(
        "--e2e-rate", type=float, default=200.0, help="requests per second in the end-to-end stage"
    )
    parser.add_argument(
        "--soak-seconds",
        type=float,
        default=180.0,
        help="seconds of end-to-end load at --e2e-rate; the memory soak samples this phase",
    )
    parser.add_argument(
        "--rss-interval",
        type=float,
        default=5.0,
        help="seconds between memory samples in the end-to-end stage",
    )
    parser.add_argument(
        "--stage-timeout",
        type=float,
        default=180.0,
        help="seconds a router or sink stage may take to see every record",
    )
    parser.add_argument(
        "--keep-work-dir",
        action="store_true",
        help="keep the broker data, configs and chDB folders after the run",
    )
    arguments = parser.parse_args(argv)

    unknown = sorted(set(arguments.stages.split(",")) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(unknown)}; expected some of {', '.join(STAGES)}")
    return arguments


def _sizes(text: str) -> list[int]:
    return [int(size) for size in text.split(",") if size.strip()]


def check_requirements(stages: set[str]) -> None:
    """Raise RuntimeError with an install hint when a tool a stage needs is missing."""
    if (os.cpu_count() or 1) < 2:
        raise RuntimeError(
            "the benchmark pins the server under test and the load generator to separate "
            f"cores, but this machine has {os.cpu_count()} CPU; run it on 2 or more"
        )
    if shutil.which("taskset") is None:
        raise RuntimeError("taskset not found on PATH (Debian: apt-get install -y util-linux)")
    if stages & {"ingest", "profile", "scaling"}:
        require_wrk()
    if "ingest" in stages:
        ingest_bench.install_express()
    if "profile" in stages:
        py_spy_path()


class Run:
    """One benchmark run: its arguments, context, results and their files."""

    def __init__(self, arguments: argparse.Namespace, context: BenchContext) -> None:
        self.arguments = arguments
        self.context = context
        self.results: dict[str, Any] = {}
        self.targets: dict[str, ingest_bench.Target] = {}
        self.ingest_config: HooklineConfig | None = None

    @property
    def results_path(self) -> Path:
        return self.arguments.results_dir / "results.json"

    def save(self) -> None:
        """Write results.json and summary.md as they are now."""
        self.arguments.results_dir.mkdir(parents=True, exist_ok=True)
        self.results_path.write_text(json.dumps(self.results, indent=2, default=_json_default))
        summary = report.render(json.loads(self.results_path.read_text()))
        (self.arguments.results_dir / "summary.md").write_text(summary)

    def stage(self, name: str, key: str, step: Callable[[], Any]) -> None:
        """Run STEP, store its result under KEY, or store its error and go on."""
        if name not in self.arguments.stages.split(","):
            return
        logger.info("stage %s starting", name)
        started = time.monotonic()
        try:
            self.results[key] = step()
        except (KeyboardInterrupt, SystemExit):
            self.results.setdefault("errors", {})[name] = "interrupted"
            raise
        except Exception as error:
            logger.exception("stage %s failed", name)
            self.results.setdefault("errors", {})[name] = f"{type(error).__name__}: {error}"
            (self.context.logs_dir / f"stage-{name}-error.txt").write_text(traceback.format_exc())
        finally:
            self.results.setdefault("stage_seconds", {})[name] = time.monotonic() - started
            self.save()

    def ingest(self) -> dict[str, Any]:
        """Stage 1; keeps the servers running for the profile."""
        self._pin_broker()
        result, self.targets = ingest_bench.run_single_core(
            self.context,
            self._ingest_config(),
            rounds=self.arguments.rounds,
            seconds=self.arguments.seconds,
            connections=self.arguments.connections,
        )
        return result

    def profile(self) -> dict[str, Any]:
        """Stage 2: py-spy on the hookline target of stage 1, started here if needed."""
        self._pin_broker()
        config = self._ingest_config()
        if "hookline" not in self.targets:
            self.targets = ingest_bench.start_targets(
                self.context, config, workers=1, cpus=SERVER_CPU
            )
        target = self.targets["hookline"]
        return profile_ingest(
            self.context,
            target,
            ingest_bench.stripe_secret(config),
            self.arguments.results_dir,
            seconds=self.arguments.profile_seconds,
            connections=self.arguments.connections,
            wrk_cpus=LOAD_CPU,
        )

    def _ingest_config(self) -> HooklineConfig:
        if self.ingest_config is None:
            self.ingest_config = self.context.config("ingest")
        return self.ingest_config

    def stop_targets(self) -> None:
        """Stop the single-core ingest servers."""
        for target in self.targets.values():
            self.context.services.stop(target.service)
        self.targets = {}

    def router(self) -> dict[str, Any]:
        self._pin_broker()
        return router_bench.run_router_bench(
            self.context,
            records=self.arguments.router_records,
            timeout=self.arguments.stage_timeout,
            profile_seconds=self.arguments.router_profile_seconds,
        )

    def sink_store(self) -> dict[str, Any]:
        return sink_bench.run_store_bench(
            self.context,
            rows=self.arguments.store_rows,
            batch_sizes=_sizes(self.arguments.store_batch_sizes),
        )

    def sink(self) -> dict[str, Any]:
        self._pin_broker()
        router = self.results.get("router")
        if router is None:
            raise RuntimeError("the sink stage reads the records of the router stage; run both")
        return sink_bench.run_sink_bench(
            self.context,
            raw_topic=router["raw_topic"],
            records=router["records"],
            batch_max_rows=_sizes(self.arguments.sink_batch_rows),
            timeout=self.arguments.stage_timeout,
        )

    def scaling(self) -> dict[str, Any]:
        self._unpin_broker()
        return ingest_bench.run_two_workers(
            self.context,
            rounds=self.arguments.scaling_rounds,
            seconds=self.arguments.seconds,
            connections=self.arguments.connections,
        )

    def end_to_end(self) -> dict[str, Any]:
        self._unpin_broker()
        return pipeline_bench.run_pipeline_bench(
            self.context,
            rate=self.arguments.e2e_rate,
            seconds=self.arguments.soak_seconds,
            rss_interval=self.arguments.rss_interval,
        )

    def baseline(self) -> dict[str, Any]:
        self._pin_broker()
        return experiments.run_baseline_experiment(
            self.context,
            ref=self.arguments.baseline_ref,
            rounds=self.arguments.rounds,
            seconds=self.arguments.seconds,
            connections=self.arguments.connections,
        )

    def _pin_broker(self) -> None:
        set_affinity(self.context.broker.pid or 0, {int(LOAD_CPU)})

    def _unpin_broker(self) -> None:
        set_affinity(self.context.broker.pid or 0, range(os.cpu_count() or 1))


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def execute(arguments: argparse.Namespace) -> int:
    """Run the chosen stages and return the exit status."""
    stages = set(arguments.stages.split(","))
    check_requirements(stages)
    arguments.results_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    port, controller_port = find_free_ports(2)
    broker = LocalBroker(data_dir=work_dir / "kafka", port=port, controller_port=controller_port)
    started = time.monotonic()

    with ServiceSet() as services:
        context = BenchContext(arguments.results_dir, work_dir, broker, services)
        run = Run(arguments, context)
        run.results.update(
            {
                "command": shlex.join(["python", "-m", "bench.run", *sys.argv[1:]]),
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine.describe(),
                "load_average_start": machine.load_average(),
                "broker": {"bootstrap_servers": broker.bootstrap_servers, "heap": broker.heap},
            }
        )
        try:
            broker.start()
            run.results["broker"]["pid"] = broker.pid
            set_affinity(broker.pid or 0, {int(LOAD_CPU)})
            broker.wait_ready(BROKER_READY_SECONDS)
            run.stage("ingest", "ingest", run.ingest)
            run.stage("profile", "profile", run.profile)
            run.stop_targets()
            run.stage("router", "router", run.router)
            run.stage("sink-store", "sink_store", run.sink_store)
            run.stage("sink", "sink", run.sink)
            run.stage("scaling", "ingest_two_workers", run.scaling)
            run.stage("e2e", "end_to_end", run.end_to_end)
            run.stage("baseline", "baseline_experiment", run.baseline)
        finally:
            services.stop_all()
            broker.stop()
            run.results["load_average_end"] = machine.load_average()
            run.results["duration_seconds"] = time.monotonic() - started
            run.save()
            if not arguments.keep_work_dir:
                shutil.rmtree(work_dir, ignore_errors=True)
    print((arguments.results_dir / "summary.md").read_text())
    logger.info("results in %s", arguments.results_dir)
    return 1 if run.results.get("errors") else 0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m bench.run`."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    for noisy in ("aiokafka", "httpx", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    arguments = parse_arguments(argv)
    try:
        status = execute(arguments)
    except RuntimeError as error:
        logger.error("%s", error)
        status = 2
    raise SystemExit(status)


if __name__ == "__main__":
    main()
