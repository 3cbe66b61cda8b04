"""Processes that a benchmark starts: CPU pinning, resident memory, and a stop that always runs.

Every `Service` runs in its own session (process group), so a stop signal reaches the
process and any children it forked (uvicorn workers, for example). `ServiceSet` stops every
service it started, newest first, when its `with` block ends, whether it ends normally, by an
exception or by Ctrl-C, and also at interpreter exit as a last resort.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 20.0
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """Return the pids of every descendant of PID, read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in field 2 may contain spaces, so split after its closing bracket.
        fields = stat.rpartition(")")[2].split()
        parents.setdefault(int(fields[1]), []).append(int(entry.name))

    found: list[int] = []
    pending = [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found.extend(children)
        pending.extend(children)
    return found


def rss_bytes(pid: int, *, with_children: bool = True) -> int:
    """Return the resident set size of PID, plus its descendants by default, in bytes.

    Pages shared between the processes of a tree count once per process. A process that
    exited while this ran counts as 0.
    """
    pids = [pid, *child_pids(pid)] if with_children else [pid]
    total = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/statm").read_text().split()
        except OSError:
            continue
        total += int(fields[1]) * PAGE_BYTES
    return total


def cpu_seconds(pid: int, *, with_children: bool = True) -> float:
    """Return the user plus system CPU time of PID, plus its live descendants, in seconds."""
    pids = [pid, *child_pids(pid)] if with_children else [pid]
    ticks = 0
    for each in pids:
        try:
            stat = Path(f"/proc/{each}/stat").read_text()
        except OSError:
            continue
        # After the command name: state is field 3, utime field 14 and stime field 15.
        fields = stat.rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def set_affinity(pid: int, cpus: Iterable[int]) -> None:
    """Pin every thread of PID and of its descendants to CPUS.

    `os.sched_setaffinity` on a pid changes only that one thread, and the JVM of the Kafka
    broker starts dozens, so each thread id under /proc/<pid>/task is pinned. Threads
    started later inherit the affinity of the thread that starts them.
    """
    cpu_set = set(cpus)
    for each in [pid, *child_pids(pid)]:
        try:
            threads = [int(task.name) for task in Path(f"/proc/{each}/task").iterdir()]
        except OSError:
            continue
        for thread in threads:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(thread, cpu_set)


def pinned(command: Sequence[str], cpus: str | None) -> list[str]:
    """Return COMMAND prefixed with `taskset -c CPUS`, or unchanged when CPUS is None."""
    if cpus is None:
        return list(command)
    return ["taskset", "-c", cpus, *command]


class Service:
    """One long-running process of a benchmark, with its output in a log file.

    Args:
        name: Label used in logs and results.
        command: The program and its arguments.
        log_path: File that receives stdout and stderr.
        cpus: CPU list for `taskset -c` (for example "0"), or None to run unpinned.
        env: Extra environment variables on top of this process's environment.
        cwd: Working folder; defaults to the current one.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        *,
        cpus: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = pinned(command, cpus)
        self.log_path = log_path
        self.cpus = cpus
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Pid of the running process. Raises RuntimeError before start()."""
        if self.process is None:
            raise RuntimeError(f"service {self.name} is not started")
        return self.process.pid

    def start(self) -> None:
        """Start the process in a new session and return without waiting."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        logger.info("started %s (pid %d), log %s", self.name, self.process.pid, self.log_path)

    def running(self) -> bool:
        """Return True while the process has not exited."""
        return self.process is not None and self.process.poll() is None

    def check_running(self) -> None:
        """Raise RuntimeError, with the end of the log, when the process has exited."""
        if self.running():
            return
        code = self.process.returncode if self.process is not None else None
        raise RuntimeError(
            f"{self.name} exited with code {code}; last lines of {self.log_path}:\n"
            + self.log_tail()
        )

    def rss_bytes(self) -> int:
        """Return the resident set size of the process and its children, 0 when stopped."""
        if not self.running():
            return 0
        return rss_bytes(self.pid)

    def cpu_seconds(self) -> float:
        """Return the CPU time of the process and its children so far, 0 when stopped."""
        if not self.running():
            return 0.0
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Send SIGTERM to the process group, then SIGKILL after TIMEOUT seconds."""
        process = self.process
        if process is None or process.poll() is not None:
            return

        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
        # Children that outlived their parent belong to the group too.
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        logger.info("stopped %s (exit code %s)", self.name, process.returncode)

    def log_tail(self, lines: int = 30) -> str:
        """Return the last LINES lines of the log file."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class ServiceSet:
    """Services started together and stopped together, newest first.

    Use it as a context manager. `start` registers a service before starting it, so a
    service whose start fails half way is stopped too.
    """

    def __init__(self) -> None:
        self._services: list[Service] = []
        atexit.register(self.stop_all)

    def start(self, service: Service) -> Service:
        """Start SERVICE and return it."""
        self._services.append(service)
        service.start()
        return service

    def stop(self, service: Service) -> None:
        """Stop SERVICE now and forget it."""
        service.stop()
        if service in self._services:
            self._services.remove(service)

    def stop_all(self) -> None:
        """Stop every service still registered, newest first."""
        while self._services:
            service = self._services.pop()
            try:
                service.stop()
            except Exception:
                logger.exception("stopping %s failed", service.name)

    def __enter__(self) -> ServiceSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()


def run_bounded(
    command: Sequence[str],
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    on_tick: Callable[[], None] | None = None,
    tick_seconds: float = 1.0,
) -> subprocess.CompletedProcess[str]:
    """Run COMMAND to completion in its own session and return its output.

    ON_TICK, when given, is called every TICK_SECONDS while the command runs, for example
    to sample the memory of the server under load. The process group is killed when
    TIMEOUT seconds pass (raising subprocess.TimeoutExpired) or when this is interrupted
    (Ctrl-C, an exception), so no load generator or profiler outlives the benchmark.
    """
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(list(command), timeout)
            try:
                stdout, stderr = process.communicate(timeout=min(tick_seconds, remaining))
                break
            except subprocess.TimeoutExpired:
                if on_tick is not None:
                    on_tick()
    except BaseException:
        _signal_group(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Call CONDITION until it returns True or TIMEOUT seconds pass; return whether it did."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
