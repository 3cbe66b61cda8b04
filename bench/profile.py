"""Profile of ingest under load: py-spy samples, grouped by layer.

py-spy (https://github.com/benfred/py-spy) samples the Python stacks of a running process
without changing it. `profile_ingest` records a flame graph (SVG) and the same kind of
samples as collapsed stacks (one `frame;frame;... count` line per distinct stack), which
`summarize_stacks` groups by layer. With `--nonblocking` py-spy reads the stacks without
pausing the process, so the profile costs little throughput, but some stacks are read while
they change and come out cut short or are counted as errors.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.ingest_bench import Target
from bench.processes import run_bounded
from bench.signed_requests import sign_requests, write_requests
from bench.wrk import run_wrk

logger = logging.getLogger(__name__)

SAMPLES_PER_SECOND = 200
# Distinct signed requests per second of profiled load; ingest under py-spy is slower.
PROFILE_REQUESTS_PER_SECOND = 4000
PY_SPY_INSTALL_HINT = (
    "py-spy not found. Install it into the virtualenv: .venv/bin/pip install py-spy"
)
_FRAME_FILE = re.compile(r"\(([^()]*?):\d+\)$")

# Layers in the order they are tried, from the leaf frame of a stack towards its root. The
# first frame whose file matches gives the sample its layer.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Kafka producer (aiokafka, ingest/producer.py)", ("aiokafka/", "ingest/producer.py")),
    ("Signature check (ingest/schemes, hmac)", ("ingest/schemes/", "hmac.py")),
    (
        "Hookline request handling: headers, ids, record, replay guard, metrics",
        ("hookline/", "ingest/", "prometheus_client/", "uuid.py", "orjson"),
    ),
    ("Litestar: routing, request, response", ("litestar/",)),
    ("uvicorn and httptools: HTTP parsing and writing", ("uvicorn/", "httptools")),
    ("asyncio tasks and futures (wait_for, shield)", ("asyncio/tasks.py", "asyncio/futures.py")),
    ("Event loop, native (uvloop: sockets, callbacks)", ("asyncio/runners.py", "uvloop")),
)
OTHER_LAYER = "Other (stdlib, typing, collections)"
# Files of the frames that start the process and the event loop. They are on every
# complete stack, so they show nothing about where a request spends its time.
ENTRY_FILES = frozenset(
    {
        "<frozen runpy>",
        "click/core.py",
        "click/decorators.py",
        "hookline/cli.py",
        "ingest/server.py",
        "uvicorn/main.py",
        "uvicorn/server.py",
        "uvicorn/_compat.py",
        "asyncio/runners.py",
        "asyncio/base_events.py",
    }
)


@dataclass(frozen=True)
class StackProfile:
    """Samples grouped by layer and the functions that take the largest share."""

    samples: int
    layers: dict[str, float]
    functions: list[tuple[str, float]]
    # Share of samples whose stack reaches down to a frame of ENTRY_FILES; the others were
    # read cut short and miss their outer frames.
    complete_share: float = 0.0


def frame_file(frame: str) -> str:
    """Return the file part of a py-spy frame `function (path/file.py:line)`."""
    match = _FRAME_FILE.search(frame)
    return match.group(1) if match else frame


def layer_of(frames: list[str]) -> str:
    """Return the layer of one stack (root first) by its frame nearest the leaf that matches."""
    for frame in reversed(frames):
        path = frame_file(frame)
        for layer, markers in LAYERS:
            if any(marker in path for marker in markers):
                return layer
    return OTHER_LAYER


def summarize_stacks(text: str, *, top: int = 15, root_share: float = 0.6) -> StackProfile:
    """Group collapsed stacks TEXT by layer and list the functions with most samples.

    Shares are fractions of all samples. A function counts once per sample that has it
    anywhere on its stack (inclusive). Frames of ENTRY_FILES (runpy, click, uvicorn.run, the
    event loop), and any function on more than ROOT_SHARE of all samples, are left out of
    the list.
    """
    total = 0
    complete = 0
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        if frame_file(frames[0]) in ENTRY_FILES:
            complete += count
        layers[layer_of(frames)] += count
        names = {_function_name(frame) for frame in frames if frame_file(frame) not in ENTRY_FILES}
        for name in names:
            functions[name] += count

    if total == 0:
        return StackProfile(0, {}, [])
    shares = [(name, count / total) for name, count in functions.most_common()]
    listed = [(name, share) for name, share in shares if share <= root_share][:top]
    return StackProfile(
        total,
        {layer: count / total for layer, count in layers.most_common()},
        listed,
        complete / total,
    )


def _function_name(frame: str) -> str:
    name = frame.partition(" (")[0]
    return f"{name} ({frame_file(frame)})"


def py_spy_path() -> str:
    """Return the py-spy next to this interpreter or on PATH. Raises RuntimeError if missing."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.is_file():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise RuntimeError(PY_SPY_INSTALL_HINT)
    return found


def record(pid: int, output: Path, seconds: int, output_format: str) -> None:
    """Record SECONDS of samples of PID into OUTPUT in OUTPUT_FORMAT (flamegraph or raw)."""
    command = [
        py_spy_path(), "record", "--pid", str(pid), "--duration", str(seconds),
        "--rate", str(SAMPLES_PER_SECOND), "--nonblocking", "--format", output_format,
        "--output", str(output),
    ]  # fmt: skip
    completed = run_bounded(command, timeout=seconds + 60)
    if completed.returncode != 0:
        raise RuntimeError(f"py-spy failed with code {completed.returncode}: {completed.stderr}")


def profile_ingest(
    context: BenchContext,
    target: Target,
    secret: str,
    results_dir: Path,
    *,
    seconds: int,
    connections: int,
    wrk_cpus: str | None,
) -> dict[str, Any]:
    """Profile TARGET under wrk load: a flame graph, then collapsed stacks, SECONDS each.

    Writes `ingest.svg` and `ingest-stacks.txt` into RESULTS_DIR and returns the layer
    summary plus wrk's result during profiling (lower than unprofiled runs).
    """
    svg = results_dir / "ingest.svg"
    stacks = results_dir / "ingest-stacks.txt"
    # Long enough to cover both recordings and the profiler's start-up.
    load_seconds = 2 * seconds + 6
    host, _, path = target.url.split("://", 1)[1].partition("/")
    requests = sign_requests(
        secret, PROFILE_REQUESTS_PER_SECOND * load_seconds, host=host, path=f"/{path}"
    )
    requests_file = write_requests(requests, context.work_dir / "requests-profile.bin")
    failures: list[BaseException] = []

    def record_both() -> None:
        try:
            record(target.service.pid, svg, seconds, "flamegraph")
            record(target.service.pid, stacks, seconds, "raw")
        except BaseException as error:  # reported by the caller's thread
            failures.append(error)

    recorder = threading.Thread(target=record_both, name="py-spy")
    recorder.start()
    try:
        result = run_wrk(
            target.url, requests_file, seconds=load_seconds, connections=connections, cpus=wrk_cpus
        )
    finally:
        recorder.join()
        requests_file.unlink()
    if failures:
        raise RuntimeError(f"profiling ingest failed: {failures[0]}") from failures[0]

    profile = summarize_stacks(stacks.read_text())
    logger.info("profiled ingest: %d samples, flame graph %s", profile.samples, svg)
    return {
        "samples": profile.samples,
        "samples_per_second": SAMPLES_PER_SECOND,
        "layers": profile.layers,
        "functions": profile.functions,
        "complete_share": profile.complete_share,
        "flamegraph": str(svg),
        "stacks": str(stacks),
        "wrk_while_profiling": result.to_json(),
        "requests_repeated": result.requests > len(requests),
    }
