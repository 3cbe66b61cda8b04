"""Running wrk with `post.lua` and reading its results.

wrk (https://github.com/wg/wrk, Debian package `wrk`) keeps a fixed number of connections
busy and records the latency of every response. `post.lua` prints the totals and latency
percentiles as one `BENCH_RESULT {...}` JSON line, which `parse_result` reads.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.processes import pinned, run_bounded
from bench.signed_requests import LUA_SCRIPT

RESULT_PREFIX = "BENCH_RESULT "
INSTALL_HINT = (
    "wrk not found on PATH. The ingest benchmark uses it as the load generator. Install it "
    "with: apt-get update && apt-get install -y wrk"
)
# Seconds wrk waits for one response before it counts a timeout.
RESPONSE_TIMEOUT_SECONDS = 10


class WrkError(RuntimeError):
    """Raised when wrk is missing, fails, or prints no result line."""


@dataclass(frozen=True)
class WrkResult:
    """Totals and latency of one wrk run. Latencies are in microseconds."""

    duration_us: int
    requests: int
    bytes: int
    connect_errors: int
    read_errors: int
    write_errors: int
    status_errors: int
    timeouts: int
    latency_mean_us: float
    latency_p50_us: int
    latency_p90_us: int
    latency_p99_us: int
    latency_max_us: int

    @property
    def accepted(self) -> int:
        """Responses with a status below 400."""
        return self.requests - self.status_errors

    @property
    def accepted_per_second(self) -> float:
        """Accepted responses per second of the run."""
        if self.duration_us <= 0:
            return 0.0
        return self.accepted / (self.duration_us / 1e6)

    def to_json(self) -> dict[str, Any]:
        """Return the fields plus the derived accepted counts, for the results file."""
        return {
            **asdict(self),
            "accepted": self.accepted,
            "accepted_per_second": self.accepted_per_second,
        }


def require_wrk() -> str:
    """Return the path of wrk. Raises WrkError with the install command when it is missing."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(INSTALL_HINT)
    return path


def parse_result(output: str) -> WrkResult:
    """Read the `BENCH_RESULT` line that `post.lua` prints. Raises WrkError without one."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            fields = json.loads(line.removeprefix(RESULT_PREFIX))
            return WrkResult(**fields)
    raise WrkError(f"wrk printed no {RESULT_PREFIX.strip()} line. Its output:\n{output}")


def run_wrk(
    url: str,
    requests_file: Path,
    *,
    seconds: int,
    connections: int,
    threads: int = 1,
    cpus: str | None = None,
    on_tick: Callable[[], None] | None = None,
) -> WrkResult:
    """Run wrk against URL for SECONDS with the signed requests in REQUESTS_FILE.

    Args:
        url: URL of the server; the path and Host header come from the requests themselves.
        requests_file: File written by `bench.signed_requests.write_requests`.
        seconds: Length of the run.
        connections: Open connections, each with one request in flight.
        threads: wrk threads; each takes connections / threads of the connections.
        cpus: CPU list for `taskset -c`, or None to run unpinned.
        on_tick: Called about once a second while wrk runs.

    Raises:
        WrkError: wrk is missing, exits with an error, or prints no result.
    """
    wrk = require_wrk()
    command = pinned(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={RESPONSE_TIMEOUT_SECONDS}s",
            "--latency",
            "-s",
            str(LUA_SCRIPT),
            url,
            "--",
            str(requests_file),
            str(threads),
        ],
        cpus,
    )
    completed = run_bounded(
        command, timeout=seconds + RESPONSE_TIMEOUT_SECONDS + 30, on_tick=on_tick
    )
    if completed.returncode != 0:
        raise WrkError(
            f"wrk exited with code {completed.returncode}: {completed.stderr or completed.stdout}"
        )
    return parse_result(completed.stdout)
