"""Profile of the Faust router while it routes pre-produced records: py-spy samples by layer.

The router stage times the router once without a profiler. For the profile, a second router
with its own consumer group, deduplication table and routed topic reads the same raw records
again, so it does the same work. `RouterRecorder` starts py-spy on that router when its first
routed record is visible, records collapsed stacks and then a flame graph, and groups the
stacks with `ROUTER_LAYERS`.

Faust (faust-streaming 0.15.3) runs the aiokafka consumer in a second thread with its own
event loop, and the agent, Faust's stream and the producers in the main thread. py-spy's
`--threads` names the thread of each stack, which `ROUTER_LAYERS` uses to tell the aiokafka
client and connections of the consumer from those of the producers.

py-spy leaves out idle threads by default (its `--idle` option is off here), so a thread
waiting in `select` or on a lock adds no samples. The shares are then of the time a thread
was running or ready to run. py-spy shows only Python frames: time in C extensions (orjson,
msgspec, aiokafka's record builder and parser) counts for the Python function that called
them, because `--native` does not work together with `--nonblocking`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from bench.kafka_tools import TopicCount
from bench.processes import Service
from bench.profile import (
    SAMPLES_PER_SECOND,
    Layer,
    LayerTable,
    RecordCounts,
    record,
    summarize_stacks,
)

logger = logging.getLogger(__name__)

CONSUMER_THREAD = "Faust consumer thread"
AIOKAFKA_CONSUMER = "aiokafka consumer: fetcher, group coordinator, its client and connections"
AIOKAFKA_PRODUCER = "aiokafka producer and transactions: producer, client, connections"
# Two threads and more libraries than ingest, so the function table is longer.
TOP_FUNCTIONS = 20

ROUTER_LAYERS = LayerTable(
    layers=(
        Layer(
            "Hookline router code (streams/, hookline/records.py)",
            (
                "streams/app.py",
                "streams/router.py",
                "streams/dedupe.py",
                "streams/envelope.py",
                "streams/rules.py",
                "streams/offset_guard.py",
                "hookline/records.py",
            ),
        ),
        Layer(
            "Serialisation in Python: Faust codecs, json",
            ("faust/serializers/", "orjson", "msgspec", "json/"),
        ),
        Layer(AIOKAFKA_CONSUMER, ("aiokafka/consumer/", "aiokafka/coordinator/")),
        # Every other aiokafka frame of the consumer thread serves the consumer.
        Layer(AIOKAFKA_CONSUMER, ("aiokafka/",), thread=CONSUMER_THREAD),
        Layer(AIOKAFKA_PRODUCER, ("aiokafka/",)),
        Layer(
            "Faust and mode: agent, stream, events, acks, consumer and producer wrappers",
            ("faust/", "mode/"),
        ),
        Layer(
            "asyncio event loop: callbacks, scheduling, select, socket transports",
            (
                "asyncio/base_events.py",
                "asyncio/events.py",
                "asyncio/selector_events.py",
                "selectors.py",
            ),
        ),
        Layer("asyncio tasks, futures, queues, locks and streams", ("asyncio/",)),
    ),
    other="Other (stdlib: logging, threading, collections, typing)",
    entry_files=frozenset(
        {
            "<frozen runpy>",
            "click/core.py",
            "click/decorators.py",
            "hookline/cli.py",
            "streams/worker.py",
            "mode/worker.py",
            "faust/worker.py",
            "threading.py",
            "asyncio/runners.py",
            "asyncio/base_events.py",
        }
    ),
    # mode starts the thread of Faust's aiokafka consumer as a WorkerThread.
    thread_labels=((CONSUMER_THREAD, "WorkerThread.run (mode/threads.py"),),
)


class RouterRecorder:
    """py-spy recordings of one router process, started once its first routed record shows.

    The collapsed stacks are recorded first, because the summary comes from them and the
    router has the most records left right after its first output. The flame graph follows.

    Args:
        results_dir: Where `router-stacks.txt` and `router.svg` are written.
        seconds: Length of each of the two recordings.
    """

    def __init__(self, results_dir: Path, seconds: int) -> None:
        self.stacks_path = results_dir / "router-stacks.txt"
        self.svg_path = results_dir / "router.svg"
        self.seconds = seconds
        self._thread: threading.Thread | None = None
        self._failures: list[BaseException] = []
        self._counted: TopicCount | None = None
        self._counts: RecordCounts | None = None
        # Unix times of the start and end of the stacks recording, and of the flame graph's end.
        self._stacks_window: tuple[float, float] | None = None
        self._svg_end: float | None = None
        self._cpu_seconds = 0.0

    def observe(self, service: Service, counted: TopicCount) -> None:
        """Start recording SERVICE in a thread at the first call whose COUNTED has a record."""
        if self._thread is not None or not counted.records:
            return
        self._counted = counted
        self._thread = threading.Thread(target=self._record, args=(service,), name="py-spy-router")
        self._thread.start()

    def wait(self) -> None:
        """Wait until both recordings ended or failed."""
        if self._thread is not None:
            self._thread.join()

    def _record(self, service: Service) -> None:
        try:
            cpu_before = service.cpu_seconds()
            started = time.time()
            self._counts = record(service.pid, self.stacks_path, self.seconds, "raw", threads=True)
            self._stacks_window = (started, time.time())
            self._cpu_seconds = service.cpu_seconds() - cpu_before
            record(service.pid, self.svg_path, self.seconds, "flamegraph", threads=True)
            self._svg_end = time.time()
        except BaseException as error:  # reported by summary() in the caller's thread
            self._failures.append(error)

    def summary(self) -> dict[str, Any]:
        """Return the layer, thread and function shares of the stacks and how they were taken.

        Raises RuntimeError when the router routed nothing or py-spy failed.
        """
        if self._thread is None or self._counted is None:
            raise RuntimeError("the router routed no record, so py-spy never started")
        if self._failures:
            raise RuntimeError(f"profiling the router failed: {self._failures[0]}") from (
                self._failures[0]
            )
        if self._stacks_window is None or self._svg_end is None:
            raise RuntimeError("profiling the router ended without its recordings")

        started, ended = self._stacks_window
        last_output = (self._counted.last_timestamp_ms or 0) / 1000
        if last_output < ended:
            logger.warning(
                "the router routed its last record %.1f s before the stacks recording ended, "
                "so the profile includes idle time; raise --router-records",
                ended - last_output,
            )
        profile = summarize_stacks(self.stacks_path.read_text(), ROUTER_LAYERS, top=TOP_FUNCTIONS)
        logger.info(
            "profiled the router: %d samples, flame graph %s", profile.samples, self.svg_path
        )
        return {
            "samples": profile.samples,
            "samples_per_second": SAMPLES_PER_SECOND,
            "seconds": self.seconds,
            "idle_included": False,
            "py_spy_samples": self._counts.samples if self._counts else None,
            "py_spy_errors": self._counts.errors if self._counts else None,
            "cpu_seconds_while_recording": self._cpu_seconds,
            "wall_seconds_while_recording": ended - started,
            # Negative when the router ran out of records before a recording ended.
            "last_output_after_stacks_seconds": last_output - ended,
            "last_output_after_flamegraph_seconds": last_output - self._svg_end,
            "layers": profile.layers,
            "threads": profile.threads,
            "layers_by_thread": profile.layers_by_thread,
            "functions": profile.functions,
            "complete_share": profile.complete_share,
            "flamegraph": str(self.svg_path),
            "stacks": str(self.stacks_path),
        }
