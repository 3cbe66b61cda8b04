"""Profile of ingest under load: py-spy samples, grouped by layer.

py-spy (https://github.com/benfred/py-spy) samples the Python stacks of a running process
without changing it. `profile_ingest` records a flame graph (SVG) and the same kind of
samples as collapsed stacks (one `frame;frame;... count` line per distinct stack), which
`summarize_stacks` groups by the layers of a `LayerTable`. `bench.router_profile` does the
same for the router with its own table. With `--nonblocking` py-spy reads the stacks without
pausing the process, so the profile costs little throughput, but some stacks are read while
they change and come out cut short or are counted as errors.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
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
# With --threads, py-spy starts each stack with `thread (ID)` or `thread (ID): NAME`.
_THREAD_FRAME = re.compile(r"^thread \((\w+)\)(?:: (.*))?$")
# py-spy's summary line at the end of a recording.
_RECORD_COUNTS = re.compile(r"Samples: (\d+) Errors: (\d+)")


@dataclass(frozen=True)
class Layer:
    """A named part of a program and the file path fragments of its frames.

    THREAD, when set, limits the layer to the samples of the thread with that label (see
    `LayerTable.thread_labels`), for files that two threads use for different work.
    """

    name: str
    markers: tuple[str, ...]
    thread: str | None = None


@dataclass(frozen=True)
class LayerTable:
    """The layers of one program, in the order they are tried, and its entry frames.

    For each sample, the frames are tried from the leaf towards the root, and each frame
    against the layers in order. The first frame whose file matches gives the sample its
    layer, or OTHER when none matches. ENTRY_FILES are the files of the frames that start
    the process, its threads and their event loops. They are on every complete stack, so
    they show nothing about where the work goes. THREAD_LABELS pairs a label with the text
    of a frame that only that thread runs, such as its `run` method. A thread without one
    is labelled with the name py-spy reports.
    """

    layers: tuple[Layer, ...]
    other: str
    entry_files: frozenset[str]
    thread_labels: tuple[tuple[str, str], ...] = ()


INGEST_LAYERS = LayerTable(
    layers=(
        Layer("Kafka producer (aiokafka, ingest/producer.py)", ("aiokafka/", "ingest/producer.py")),
        Layer("Signature check (ingest/schemes, hmac)", ("ingest/schemes/", "hmac.py")),
        Layer(
            "Hookline request handling: headers, ids, record, replay guard, metrics",
            ("hookline/", "ingest/", "prometheus_client/", "uuid.py", "orjson"),
        ),
        Layer("Litestar: routing, request, response", ("litestar/",)),
        Layer("uvicorn and httptools: HTTP parsing and writing", ("uvicorn/", "httptools")),
        Layer(
            "asyncio tasks and futures (wait_for, shield)",
            ("asyncio/tasks.py", "asyncio/futures.py"),
        ),
        Layer("Event loop, native (uvloop: sockets, callbacks)", ("asyncio/runners.py", "uvloop")),
    ),
    other="Other (stdlib, typing, collections)",
    entry_files=frozenset(
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
    ),
)


@dataclass(frozen=True)
class StackProfile:
    """Samples grouped by layer and thread, and the functions that take the largest share.

    Shares are fractions of all samples. THREADS and LAYERS_BY_THREAD stay empty for stacks
    recorded without py-spy's `--threads`.
    """

    samples: int
    layers: dict[str, float]
    functions: list[tuple[str, float]]
    # Share of samples whose stack reaches down to a frame of the entry files; the others
    # were read cut short and miss their outer frames.
    complete_share: float = 0.0
    threads: dict[str, float] = field(default_factory=dict)
    layers_by_thread: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Stack:
    thread_id: str | None
    thread_name: str | None
    frames: list[str]
    count: int


def frame_file(frame: str) -> str:
    """Return the file part of a py-spy frame `function (path/file.py:line)`."""
    match = _FRAME_FILE.search(frame)
    return match.group(1) if match else frame


def layer_of(
    frames: list[str], table: LayerTable = INGEST_LAYERS, thread: str | None = None
) -> str:
    """Return the layer of one stack (root first) of THREAD by its frame nearest the leaf."""
    for frame in reversed(frames):
        path = frame_file(frame)
        for layer in table.layers:
            if layer.thread is not None and layer.thread != thread:
                continue
            if any(marker in path for marker in layer.markers):
                return layer.name
    return table.other


def summarize_stacks(
    text: str, table: LayerTable = INGEST_LAYERS, *, top: int = 15, root_share: float = 0.6
) -> StackProfile:
    """Group collapsed stacks TEXT by the layers of TABLE and list the functions with most samples.

    Shares are fractions of all samples. A function counts once per sample that has it
    anywhere on its stack (inclusive). Frames of the table's entry files (runpy, click, the
    event loop, thread start-up), and any function on more than ROOT_SHARE of all samples,
    are left out of the list.
    """
    stacks = _parse_stacks(text)
    labels = _thread_labels(stacks, table)
    total = 0
    complete = 0
    layers: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    by_thread: defaultdict[str, Counter[str]] = defaultdict(Counter)
    functions: Counter[str] = Counter()
    for stack in stacks:
        total += stack.count
        if frame_file(stack.frames[0]) in table.entry_files:
            complete += stack.count
        thread = labels.get(stack.thread_id) if stack.thread_id is not None else None
        layer = layer_of(stack.frames, table, thread)
        layers[layer] += stack.count
        if thread is not None:
            threads[thread] += stack.count
            by_thread[thread][layer] += stack.count
        names = {
            _function_name(frame)
            for frame in stack.frames
            if frame_file(frame) not in table.entry_files
        }
        for name in names:
            functions[name] += stack.count

    if total == 0:
        return StackProfile(0, {}, [])
    shares = [(name, count / total) for name, count in functions.most_common()]
    listed = [(name, share) for name, share in shares if share <= root_share][:top]
    return StackProfile(
        total,
        {layer: count / total for layer, count in layers.most_common()},
        listed,
        complete / total,
        threads={thread: count / total for thread, count in threads.most_common()},
        layers_by_thread={
            thread: {layer: count / total for layer, count in counts.most_common()}
            for thread, counts in by_thread.items()
        },
    )


def _parse_stacks(text: str) -> list[_Stack]:
    stacks = []
    for line in text.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        thread = _THREAD_FRAME.match(frames[0])
        if thread is None:
            stacks.append(_Stack(None, None, frames, int(count_text)))
        elif len(frames) > 1:
            stacks.append(_Stack(thread.group(1), thread.group(2), frames[1:], int(count_text)))
    return stacks


def _thread_labels(stacks: list[_Stack], table: LayerTable) -> dict[str | None, str]:
    """Label each thread id by a frame that only that thread runs, else by its name."""
    labels: dict[str | None, str] = {}
    for stack in stacks:
        if stack.thread_id is None:
            continue
        found = next(
            (
                label
                for label, marker in table.thread_labels
                if any(marker in frame for frame in stack.frames)
            ),
            None,
        )
        if found is not None:
            labels[stack.thread_id] = found
        elif stack.thread_id not in labels:
            labels[stack.thread_id] = stack.thread_name or f"thread {stack.thread_id}"
    return labels


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


@dataclass(frozen=True)
class RecordCounts:
    """The sample and error counts that py-spy prints at the end of a recording."""

    samples: int
    errors: int


def record(
    pid: int, output: Path, seconds: int, output_format: str, *, threads: bool = False
) -> RecordCounts | None:
    """Record SECONDS of samples of PID into OUTPUT in OUTPUT_FORMAT (flamegraph or raw).

    With THREADS, each stack starts with the id and name of its thread. Returns py-spy's
    sample and error counts, or None when its output had no such line.
    """
    command = [
        py_spy_path(), "record", "--pid", str(pid), "--duration", str(seconds),
        "--rate", str(SAMPLES_PER_SECOND), "--nonblocking", "--format", output_format,
        "--output", str(output),
    ]  # fmt: skip
    if threads:
        command.append("--threads")
    completed = run_bounded(command, timeout=seconds + 60)
    if completed.returncode != 0:
        raise RuntimeError(f"py-spy failed with code {completed.returncode}: {completed.stderr}")
    counts = _RECORD_COUNTS.search(completed.stdout + completed.stderr)
    if counts is None:
        return None
    return RecordCounts(int(counts.group(1)), int(counts.group(2)))


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
