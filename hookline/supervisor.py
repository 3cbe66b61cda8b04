"""Development supervisor: start the broker and every Hookline process, then watch them.

`hookline run` starts, in order, the local Kafka broker, the topics, the audit
sink, the router and ingest, waits until ingest is ready, and restarts any
process that exits until SIGINT, SIGTERM or SIGHUP arrives. It stops them in the reverse
order, so ingest takes no new webhooks while the router and the sink drain.
`hookline up` runs the same supervisor in the background and `hookline down`
stops it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from hookline.config import HooklineConfig
from hookline.errors import HooklineError
from hookline.processes import terminate_with_parent

logger = logging.getLogger(__name__)

PID_FILE = "hookline.pid"
READY_FILE = "hookline.ready"
LOCK_FILE = "hookline.lock"
STOP_TIMEOUT_SECONDS = 20.0
MAX_RESTART_DELAY_SECONDS = 30.0


@dataclass
class Child:
    """One supervised Hookline process and its log file."""

    name: str
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    _log_file: object = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=terminate_with_parent,
        )
        log_file.close()
        logger.info("started %s (pid %d), log %s", self.name, self.process.pid, self.log_path)

    def exited(self) -> int | None:
        if self.process is None:
            return None
        return self.process.poll()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        if self.process is None or self.process.poll() is not None:
            return

        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        logger.info("stopped %s (exit code %s)", self.name, self.process.returncode)


def _broker_ports(config: HooklineConfig) -> tuple[str, int]:
    first = config.kafka.bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise HooklineError(
            f"kafka.bootstrap_servers = {config.kafka.bootstrap_servers!r}: the local broker "
            "runs only on 127.0.0.1:<port>; point the config at it or run the parts separately"
        )
    return "127.0.0.1", int(port)


def _component_command(config: HooklineConfig, name: str) -> list[str]:
    command = [sys.executable, "-m", "hookline.cli"]
    if config.path is not None:
        command += ["--config", str(config.path)]
    return [*command, name]


def _wait_for_ingest(config: HooklineConfig, children: list[Child], timeout: float) -> None:
    url = f"http://{config.ingest.host}:{config.ingest.port}/readyz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.exited() is not None:
                raise HooklineError(f"{child.name} exited during start-up; see {child.log_path}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise HooklineError(f"ingest was not ready at {url} within {timeout:.0f} s")


def _banner(config: HooklineConfig, data_dir: Path, seconds: float) -> str:
    base = f"http://{config.ingest.host}:{config.ingest.port}"
    sources = ", ".join(sorted(config.sources))
    return "\n".join(
        [
            f"Hookline is ready ({seconds:.1f} s after start).",
            f"  Send webhooks to   {base}/webhooks/<source>   (sources: {sources})",
            "  Try a sample       .venv/bin/hookline send-sample stripe",
            '  Query the log      .venv/bin/hookline query "SELECT source, event_type, '
            'count() FROM webhook_events GROUP BY ALL"',
            f"  Metrics, OpenAPI   {base}/metrics   {base}/schema",
            f"  Kafka              {config.kafka.bootstrap_servers}",
            f"  Logs               {data_dir / 'logs'}",
            "Stop with Ctrl-C (make run) or make down (make up).",
        ]
    )


def _restart_exited(children: list[Child]) -> None:
    now = time.monotonic()
    for child in children:
        code = child.exited()
        if code is None or now < child.next_start:
            continue

        child.restarts += 1
        delay = min(MAX_RESTART_DELAY_SECONDS, 2.0 ** min(child.restarts, 5))
        logger.error(
            "%s exited with code %s; restarting it (restart %d), see %s",
            child.name,
            code,
            child.restarts,
            child.log_path,
        )
        child.next_start = now + delay
        child.start()


def _lock_data_dir(data_dir: Path) -> IO[str]:
    """Take the data folder's lock, so that two supervisors never share one broker folder.

    The lock lasts as long as the returned file stays open, and the kernel
    releases it when the process exits, even after SIGKILL.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_file = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        pid_path = data_dir / PID_FILE
        pid = pid_path.read_text().strip() if pid_path.exists() else "unknown"
        raise HooklineError(
            f"Hookline already runs on {data_dir} (pid {pid}); stop it with make down or "
            "Ctrl-C in its terminal, or pass another --data-dir"
        ) from None
    return lock_file


def _is_locked(data_dir: Path) -> bool:
    lock_path = data_dir / LOCK_FILE
    if not lock_path.exists():
        return False
    with lock_path.open("a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock_file, fcntl.LOCK_UN)
    return False


def run_stack(config: HooklineConfig, data_dir: Path, ready_timeout: float = 300.0) -> None:
    """Run the broker and all Hookline processes in the foreground until SIGINT, SIGTERM or SIGHUP.

    Raises:
        HooklineError: another supervisor runs on DATA_DIR, or a part failed to start.
    """
    from hookline.broker import LocalBroker, fetch_jars
    from streams.topics import ensure_topics

    started = time.monotonic()
    data_dir = data_dir.resolve()
    lock_file = _lock_data_dir(data_dir)
    (data_dir / PID_FILE).write_text(str(os.getpid()))
    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        logger.info("received %s; stopping", signal.Signals(signum).name)
        stop_requested = True

    # SIGHUP too: closing the terminal must stop the children, which run in
    # sessions of their own and so do not receive the terminal's hangup.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)

    # Step 1: the broker, which everything else needs.
    _, port = _broker_ports(config)
    fetch_jars()
    broker = LocalBroker(data_dir=data_dir / "kafka", port=port, controller_port=port + 1)
    broker.format()
    broker.start()
    children: list[Child] = []
    try:
        broker.wait_ready(120.0)
        asyncio.run(ensure_topics(config))

        # Step 2: consumers first, so the sink and router are up when ingest
        # begins to accept webhooks.
        for name in ("sink", "router", "ingest"):
            child = Child(name, _component_command(config, name), data_dir / "logs" / f"{name}.log")
            child.start()
            children.append(child)
        _wait_for_ingest(config, children, ready_timeout)

        print(_banner(config, data_dir, time.monotonic() - started), flush=True)
        (data_dir / READY_FILE).write_text(str(os.getpid()))

        # Step 3: restart exited processes until a stop signal arrives.
        while not stop_requested:
            _restart_exited(children)
            if not broker.is_running():
                logger.error("the Kafka broker exited; starting it again")
                broker.start()
            time.sleep(0.5)
    finally:
        # Step 4: stop in reverse order of the data flow, broker last.
        (data_dir / READY_FILE).unlink(missing_ok=True)
        for child in reversed(children):
            child.stop()
        broker.stop()
        (data_dir / PID_FILE).unlink(missing_ok=True)
        lock_file.close()
        logger.info("Hookline stopped")


def start_background(config: HooklineConfig, data_dir: Path, timeout: float) -> None:
    """Start `hookline run` detached, wait until it is ready, and record its pid."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pid_path = data_dir / PID_FILE
    if _is_locked(data_dir):
        pid = pid_path.read_text().strip() if pid_path.exists() else "unknown"
        raise HooklineError(f"Hookline already runs on {data_dir} (pid {pid}); run make down")

    (data_dir / READY_FILE).unlink(missing_ok=True)
    log_path = data_dir / "logs" / "supervisor.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = _component_command(config, "run") + ["--data-dir", str(data_dir)]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not (data_dir / READY_FILE).exists():
        if process.poll() is not None:
            pid_path.unlink(missing_ok=True)
            raise HooklineError(f"Hookline failed to start; see {log_path}")
        if time.monotonic() > deadline:
            raise HooklineError(f"Hookline was not ready within {timeout:.0f} s; see {log_path}")
        time.sleep(0.3)
    print(f"Hookline runs in the background (pid {process.pid}); log {log_path}")
    print(f"Stop it with make down (or .venv/bin/hookline down --data-dir {data_dir}).")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_background(data_dir: Path, timeout: float) -> None:
    """Stop the supervisor started by `start_background` and wait for it to exit."""
    pid_path = data_dir / PID_FILE
    if not pid_path.exists() or not _is_locked(data_dir):
        print(f"Hookline is not running on {data_dir}")
        pid_path.unlink(missing_ok=True)
        return

    # The supervisor writes this file once it holds the lock, for make run and make up alike.
    pid = int(pid_path.read_text())
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            # Its children receive SIGTERM from the kernel when it dies (terminate_with_parent).
            logger.warning("supervisor %d did not stop within %.0f s; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
    pid_path.unlink(missing_ok=True)
    print(f"Hookline stopped (pid {pid})")
