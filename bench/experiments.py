"""The `baseline` stage: this checkout's ingest against the ingest of an earlier commit.

It measures what a change to ingest bought. `git archive` extracts the commit named by
`--baseline-ref` (by default `HEAD`, so uncommitted changes are what is compared) into the
run's work folder, and both ingests start from the same config with the same Python
environment. Only the project's own modules differ: the baseline runs from the extracted
folder, so `python -m hookline.cli` imports its `ingest`, `hookline` and `streams`
packages first. Both are pinned to SERVER_CPU and take turns in rotating order for the
same rounds as the ingest stage.

    python -m bench.run --stages baseline --baseline-ref 67fb3be

A baseline whose dependencies differ from this checkout's `requirements.lock` is not
comparable this way, and the stage does not check that.
"""

from __future__ import annotations

import io
import logging
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from bench.context import LOAD_CPU, SERVER_CPU, BenchContext, wait_for_http
from bench.ingest_bench import Target, run_rounds, stripe_secret, summarize
from bench.processes import Service
from hookline.broker import find_free_ports

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parent.parent
CURRENT = "hookline"
BASELINE = "hookline-baseline"


def extract_revision(ref: str, folder: Path) -> str:
    """Write the tree of git revision REF into FOLDER and return its full commit id.

    Raises:
        subprocess.CalledProcessError: REF names no commit of this repository.
    """
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
    ).stdout
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return commit


def run_baseline_experiment(
    context: BenchContext, *, ref: str, rounds: int, seconds: int, connections: int
) -> dict[str, Any]:
    """Compare this checkout's ingest with the ingest of REF, both pinned to SERVER_CPU."""
    baseline_dir = context.work_dir / "baseline"
    commit = extract_revision(ref, baseline_dir)
    logger.info("Baseline for the ingest comparison: %s (%s) in %s", ref, commit, baseline_dir)

    config = context.config("baseline")
    ports = {CURRENT: config.ingest.port, BASELINE: find_free_ports(1)[0]}
    folders = {CURRENT: REPOSITORY, BASELINE: baseline_dir}
    targets: dict[str, Target] = {}
    try:
        for name, port in ports.items():
            service = context.start(
                Service(
                    name,
                    context.hookline_command(config, "ingest", "--port", str(port)),
                    context.log_path(f"experiment-{name}"),
                    cpus=SERVER_CPU,
                    env={"HOOKLINE_CONFIG": str(config.path)},
                    cwd=folders[name],
                )
            )
            base = f"http://127.0.0.1:{port}"
            targets[name] = Target(name, service, f"{base}/webhooks/stripe", f"{base}/readyz")
            wait_for_http(service, targets[name].ready_url)
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
    finally:
        for target in targets.values():
            context.services.stop(target.service)

    summary = summarize(runs)
    current = summary["medians"][CURRENT]
    baseline = summary["medians"][BASELINE]
    return {
        "baseline_ref": ref,
        "baseline_commit": commit,
        "server_cpus": SERVER_CPU,
        "wrk_cpus": LOAD_CPU,
        "broker_cpus": LOAD_CPU,
        "connections": connections,
        "wrk_threads": 1,
        "seconds": seconds,
        "rounds": rounds,
        "runs": runs,
        "medians": summary["medians"],
        "gain": current["accepted_per_second"] / baseline["accepted_per_second"] - 1.0,
        "per_round_gain": [
            ours["accepted_per_second"] / theirs["accepted_per_second"] - 1.0
            for ours, theirs in zip(runs[CURRENT], runs[BASELINE], strict=True)
        ],
        "cpu_change": _ratio(current, baseline, "server_cpu_us_per_accepted"),
    }


def _ratio(current: dict[str, Any], baseline: dict[str, Any], key: str) -> float | None:
    ours, theirs = current.get(key), baseline.get(key)
    if not ours or not theirs:
        return None
    return float(ours) / float(theirs) - 1.0
