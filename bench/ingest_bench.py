"""Ingest throughput: Hookline against a bare Litestar handler and an Express receiver.

Three servers take the same signed Stripe requests from wrk at a fixed number of connections:

- `hookline`: the real ingest (`hookline ingest`), which verifies the signature and returns
  200 only after the broker acknowledged the record with acks=all;
- `bare`: a Litestar handler on the same uvicorn, uvloop and httptools stack that reads the
  body and answers 200 (`bench.apps`);
- `express`: Express 5 on Node.js verifying the Stripe signature (`bench/express`).

In the single-core runs each server is pinned to `SERVER_CPU` and wrk to `LOAD_CPU`, where
the broker runs as well. The servers run side by side for the whole stage and take turns,
in a different order each round, so slow phases of a shared machine hit all of them.
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.context import LOAD_CPU, SERVER_CPU, BenchContext, wait_for_http
from bench.processes import Service, cpu_seconds
from bench.signed_requests import sign_requests, write_requests
from bench.stats import median, ratio
from bench.wrk import WrkResult, run_wrk
from hookline.broker import find_free_ports
from hookline.config import HooklineConfig

logger = logging.getLogger(__name__)

EXPRESS_DIR = Path(__file__).resolve().parent / "express"
WARMUP_SECONDS = 2
# Distinct signed requests for a hookline warm-up: 2 s at up to 10,000 requests/s.
WARMUP_REQUESTS = 20_000
# Signed requests that a baseline server gets over and over.
CYCLED_REQUESTS = 2_000
NPM_INSTALL_HINT = (
    "node or npm not found on PATH. The Express baseline needs Node.js 18 or newer and npm "
    "(Debian: apt-get install -y nodejs npm)."
)


@dataclass
class Target:
    """One server under test and where to reach it."""

    name: str
    service: Service
    url: str
    ready_url: str


def stripe_secret(config: HooklineConfig) -> str:
    """Return the first secret of the stripe source, which signs the requests."""
    return config.sources["stripe"].secrets[0]


def install_express() -> None:
    """Install the Express baseline's packages from package-lock.json unless present."""
    if (EXPRESS_DIR / "node_modules" / "express").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError(NPM_INSTALL_HINT)
    logger.info("installing the Express baseline's packages with npm ci")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EXPRESS_DIR, check=True, timeout=300)


def start_targets(
    context: BenchContext, config: HooklineConfig, *, workers: int, cpus: str | None
) -> dict[str, Target]:
    """Start hookline, bare and (with one worker) express; wait until each is ready."""
    targets: dict[str, Target] = {}
    suffix = f"-{workers}w"
    ports = find_free_ports(2)

    hookline_port = config.ingest.port
    if workers == 1:
        hookline_command = context.hookline_command(config, "ingest", "--port", str(hookline_port))
    else:
        hookline_command = [
            context.python, "-m", "bench.apps", "hookline",
            "--port", str(hookline_port), "--workers", str(workers),
        ]  # fmt: skip
    targets["hookline"] = _target(
        context,
        Service(
            f"hookline{suffix}",
            hookline_command,
            context.log_path(f"ingest-hookline{suffix}"),
            cpus=cpus,
            env={"HOOKLINE_CONFIG": str(config.path)},
        ),
        hookline_port,
        "/readyz",
    )

    bare_port = ports[0]
    targets["bare"] = _target(
        context,
        Service(
            f"bare{suffix}",
            [
                context.python,
                "-m",
                "bench.apps",
                "bare",
                "--port",
                str(bare_port),
                "--workers",
                str(workers),
            ],
            context.log_path(f"ingest-bare{suffix}"),
            cpus=cpus,
        ),  # fmt: skip
        bare_port,
        "/healthz",
    )

    if workers == 1:
        install_express()
        express_port = ports[1]
        targets["express"] = _target(
            context,
            Service(
                "express",
                ["node", str(EXPRESS_DIR / "server.js"), str(express_port)],
                context.log_path("ingest-express"),
                cpus=cpus,
                env={"STRIPE_WEBHOOK_SECRET": stripe_secret(config)},
            ),
            express_port,
            "/healthz",
        )

    for target in targets.values():
        wait_for_http(target.service, target.ready_url)
    return targets


def _target(context: BenchContext, service: Service, port: int, ready_path: str) -> Target:
    context.start(service)
    base = f"http://127.0.0.1:{port}"
    return Target(service.name, service, f"{base}/webhooks/stripe", base + ready_path)


def _requests_file(
    context: BenchContext, target: Target, secret: str, count: int, name: str
) -> Path:
    """Sign COUNT requests for TARGET now and write them where wrk reads them."""
    base = target.url.split("://", 1)[1]
    host, _, path = base.partition("/")
    requests = sign_requests(secret, count, host=host, path=f"/{path}")
    return write_requests(requests, context.work_dir / f"requests-{target.name}-{name}.bin")


def measure(
    context: BenchContext,
    target: Target,
    secret: str,
    *,
    seconds: int,
    connections: int,
    threads: int,
    wrk_cpus: str | None,
    rate_hint: float = 0.0,
) -> dict[str, Any]:
    """Warm TARGET up, then run wrk for SECONDS while sampling the server's memory.

    Hookline rejects a repeat of a signed request with 409, so its runs get as many
    distinct requests as they can send. The warm-up gets `WARMUP_REQUESTS`. The measured
    run gets twice the higher of the warm-up rate and RATE_HINT (the best rate of earlier
    runs), per second of the run. The baselines check no repeats and cycle through
    `CYCLED_REQUESTS`.
    """
    distinct = target.name.startswith("hookline")
    warmup_count = WARMUP_REQUESTS if distinct else CYCLED_REQUESTS
    warmup_file = _requests_file(context, target, secret, warmup_count, "warmup")
    warmup = run_wrk(
        target.url,
        warmup_file,
        seconds=WARMUP_SECONDS,
        connections=connections,
        threads=threads,
        cpus=wrk_cpus,
    )
    warmup_file.unlink()

    count = CYCLED_REQUESTS
    if distinct:
        expected_rate = max(warmup.accepted_per_second, rate_hint)
        count = max(WARMUP_REQUESTS, math.ceil(2 * expected_rate * seconds))
    # Signed right before the run, so every request is well inside the 300 s tolerance.
    requests_file = _requests_file(context, target, secret, count, "run")
    rss_samples: list[int] = []
    cpu_before = target.service.cpu_seconds()
    broker_cpu_before = cpu_seconds(context.broker.pid or 0)
    result = run_wrk(
        target.url,
        requests_file,
        seconds=seconds,
        connections=connections,
        threads=threads,
        cpus=wrk_cpus,
        on_tick=lambda: rss_samples.append(target.service.rss_bytes()),
    )
    cpu_used = target.service.cpu_seconds() - cpu_before
    broker_cpu_used = cpu_seconds(context.broker.pid or 0) - broker_cpu_before
    run_seconds = result.duration_us / 1e6
    requests_file.unlink()
    target.service.check_running()
    rss_samples.append(target.service.rss_bytes())
    _log_run(target.name, result)
    return {
        **result.to_json(),
        "signed_requests": count,
        "requests_repeated": distinct and result.requests > count,
        "rss_max_bytes": max(rss_samples),
        "server_cpu_seconds": cpu_used,
        # Busy fraction of one core; 1.0 means the server used a whole core the whole run.
        "server_cpu_fraction": cpu_used / run_seconds if run_seconds else None,
        "broker_cpu_fraction": broker_cpu_used / run_seconds if run_seconds else None,
        "server_cpu_us_per_accepted": 1e6 * cpu_used / result.accepted if result.accepted else None,
    }


def _log_run(name: str, result: WrkResult) -> None:
    logger.info(
        "%s: %.0f accepted/s, p50 %.2f ms, p99 %.2f ms, %d status errors, %d socket errors",
        name,
        result.accepted_per_second,
        result.latency_p50_us / 1000,
        result.latency_p99_us / 1000,
        result.status_errors,
        result.connect_errors + result.read_errors + result.write_errors + result.timeouts,
    )


def run_rounds(
    context: BenchContext,
    targets: dict[str, Target],
    secret: str,
    *,
    rounds: int,
    seconds: int,
    connections: int,
    threads: int,
    wrk_cpus: str | None,
) -> dict[str, list[dict[str, Any]]]:
    """Measure every target once per round, rotating the order each round."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    order = list(targets)
    for round_index in range(rounds):
        shift = round_index % len(order)
        for name in order[shift:] + order[:shift]:
            logger.info("ingest round %d/%d: %s", round_index + 1, rounds, name)
            run = measure(
                context,
                targets[name],
                secret,
                seconds=seconds,
                connections=connections,
                threads=threads,
                wrk_cpus=wrk_cpus,
                rate_hint=max((done["accepted_per_second"] for done in runs[name]), default=0.0),
            )
            runs[name].append({"round": round_index + 1, **run})
    return runs


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Return per-target medians and the ratios of hookline to the other targets."""
    medians: dict[str, dict[str, float]] = {}
    for name, measured in runs.items():
        medians[name] = {
            "accepted_per_second": median([run["accepted_per_second"] for run in measured]),
            "latency_p50_ms": median([run["latency_p50_us"] / 1000 for run in measured]),
            "latency_p99_ms": median([run["latency_p99_us"] / 1000 for run in measured]),
            "rss_max_mib": median([run["rss_max_bytes"] / 2**20 for run in measured]),
            "server_cpu_us_per_accepted": median(
                [run["server_cpu_us_per_accepted"] or math.nan for run in measured]
            ),
            "server_cpu_fraction": median([run["server_cpu_fraction"] for run in measured]),
            "broker_cpu_fraction": median([run["broker_cpu_fraction"] for run in measured]),
            "status_errors": sum(run["status_errors"] for run in measured),
            "socket_errors": sum(
                run["connect_errors"] + run["read_errors"] + run["write_errors"] + run["timeouts"]
                for run in measured
            ),
        }

    summary: dict[str, Any] = {"medians": medians, "ratios": {}}
    hookline = medians.get("hookline")
    if hookline is None:
        return summary
    for other in ("bare", "express"):
        if other not in medians:
            continue
        per_round = [
            ratio(ours["accepted_per_second"], theirs["accepted_per_second"])
            for ours, theirs in zip(runs["hookline"], runs[other], strict=True)
        ]
        summary["ratios"][f"hookline/{other}"] = {
            "of_medians": ratio(
                hookline["accepted_per_second"], medians[other]["accepted_per_second"]
            ),
            "per_round": per_round,
            # Requests per CPU-second, which other processes on the same core disturb less
            # than requests per second: the throughput ratio if each server had a whole core.
            "of_cpu_per_request": ratio(
                medians[other]["server_cpu_us_per_accepted"],
                hookline["server_cpu_us_per_accepted"],
            ),
        }
    summary["hookline_p99_over_p50"] = ratio(hookline["latency_p99_ms"], hookline["latency_p50_ms"])
    return summary


def run_single_core(
    context: BenchContext, config: HooklineConfig, *, rounds: int, seconds: int, connections: int
) -> tuple[dict[str, Any], dict[str, Target]]:
    """Run the pinned comparison; return its results and the still running targets."""
    targets = start_targets(context, config, workers=1, cpus=SERVER_CPU)
    runs = run_rounds(
        context,
        targets,
        stripe_secret(config),
        rounds=rounds,
        seconds=seconds,
        connections=connections,
        threads=1,
        wrk_cpus=LOAD_CPU,
    )
    result = {
        "server_cpus": SERVER_CPU,
        "wrk_cpus": LOAD_CPU,
        "broker_cpus": LOAD_CPU,
        "connections": connections,
        "wrk_threads": 1,
        "seconds": seconds,
        "rounds": rounds,
        "runs": runs,
        **summarize(runs),
    }
    return result, targets


def run_two_workers(
    context: BenchContext, *, rounds: int, seconds: int, connections: int
) -> dict[str, Any]:
    """Run hookline and bare with two uvicorn workers each, everything unpinned."""
    config = context.config("ingest2")
    targets = start_targets(context, config, workers=2, cpus=None)
    try:
        runs = run_rounds(
            context,
            targets,
            stripe_secret(config),
            rounds=rounds,
            seconds=seconds,
            connections=connections,
            threads=2,
            wrk_cpus=None,
        )
    finally:
        for target in targets.values():
            context.services.stop(target.service)
    return {
        "workers": 2,
        "server_cpus": "unpinned",
        "wrk_cpus": "unpinned",
        "broker_cpus": "unpinned",
        "connections": connections,
        "wrk_threads": 2,
        "seconds": seconds,
        "rounds": rounds,
        "runs": runs,
        **summarize(runs),
    }
