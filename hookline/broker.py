"""Fetch, format, start and stop a single-node Apache Kafka broker for development and tests.

The broker is Apache Kafka itself in KRaft mode, run from the jars of
``org.apache.kafka:kafka_2.13`` that ``deploy/kafka/pom.xml`` pins. ``fetch_jars`` copies them
from Maven Central into ``deploy/kafka/lib`` once. ``LocalBroker`` formats a data folder,
starts ``kafka.Kafka`` on Java 17 or newer in its own process group and stops it again.
Layout of the data folder:

    server.properties   broker configuration, written again by every format() and start()
    kraft/              log.dirs: topic partitions and the KRaft metadata log
    logs/server.log     the broker's log4j2 log at INFO (see deploy/kafka/log4j2.yaml)
    broker.out          stdout and stderr of the JVM: WARN and above, JVM errors

Command line, for a dev supervisor or a terminal::

    python -m hookline.broker fetch
    python -m hookline.broker run --data-dir var/kafka --port 9092 --controller-port 9093
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
import xml.etree.ElementTree as ElementTree
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from hookline.errors import HooklineError
from hookline.processes import terminate_with_parent

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
KAFKA_DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
POM_PATH = KAFKA_DEPLOY_DIR / "pom.xml"
LOG4J2_CONFIG_PATH = KAFKA_DEPLOY_DIR / "log4j2.yaml"
DEFAULT_LIB_DIR = KAFKA_DEPLOY_DIR / "lib"
MIN_JAVA_VERSION = 17

# Written into the lib folder after Maven copied every jar. A missing or different marker
# (another Kafka version or an edited pom) makes fetch_jars() copy the jars again.
_FETCH_MARKER_NAME = ".hookline-fetched"
_POM_NAMESPACE = {"pom": "http://maven.apache.org/POM/4.0.0"}
_HEAP_PATTERN = re.compile(r"[1-9][0-9]*[kKmMgG]?")
# log4j2 ERROR and FATAL lines, causes in Java stack traces and JVM launch errors.
_ERROR_LINE_PATTERN = re.compile(r"\] (ERROR|FATAL) |^Caused by: |^Exception in thread |^Error: ")
_T = TypeVar("_T")

# Broker settings that a single development node needs on top of its listeners and folders.
# LocalBroker.properties overrides any of them.
# Largest record batch the broker takes: a 25 MiB body plus Hookline's headers.
MAX_RECORD_BYTES = 26 * 1024 * 1024 + 64 * 1024

SINGLE_NODE_SETTINGS: dict[str, str] = {
    # Internal topics ask for 3 replicas by default, which one broker cannot hold.
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    # Transactional producers, and so Faust's exactly_once, fail to initialise while the
    # transaction state topic has fewer in-sync replicas than this (default 2).
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # The first consumer group and the first transactional producer create these topics with
    # 50 partitions each by default. 4 keep the data folder small and, measured with Kafka
    # 4.0.1 on 2 cores, make the first transaction and group commit about 0.4 s faster.
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.num.partitions": "4",
    # A restarted node cannot register again until the session of its previous run expires
    # (DUPLICATE_BROKER_REGISTRATION), so the default session of 9 s delays every restart by
    # about 9 s. A node whose heartbeats stop for a whole session is fenced and, being the only
    # node, leaves every partition without a leader, so 3 s still spans 6 heartbeats.
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
    # A new consumer group rebalances at once instead of waiting 3 s for more members.
    "group.initial.rebalance.delay.ms": "0",
    # The log cleaner, which compacted topics such as Faust changelogs need, allocates this
    # buffer at start. The default of 128 MiB is a quarter of LocalBroker's default heap.
    "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
    # GitHub sends bodies of up to 25 MiB; the default limit of about 1 MiB would make
    # ingest respond with 503 to every larger webhook. Replicas must fetch what the leader takes.
    "message.max.bytes": str(MAX_RECORD_BYTES),
    "replica.fetch.max.bytes": str(MAX_RECORD_BYTES),
}


class BrokerError(HooklineError, RuntimeError):
    """Raised when the local Kafka broker cannot be fetched, formatted, started or stopped."""


class _NotReadyYetError(Exception):
    """Raised by a readiness probe that reached the broker before it finished starting."""


class ToolMissingError(BrokerError):
    """Raised when Maven or a Java 17+ runtime is missing."""


class BrokerNotReadyError(BrokerError):
    """Raised when the broker process exits or does not serve metadata within the timeout."""

    def __init__(self, message: str, *, bootstrap_servers: str, exited: bool) -> None:
        super().__init__(message)
        self.bootstrap_servers = bootstrap_servers
        self.exited = exited
        # A broker that is still starting may become ready, but one that exited needs a fix first.
        self.retriable = not exited


@cache
def kafka_version(pom_path: Path = POM_PATH) -> str:
    """Read the Kafka version that the pom pins (its ``kafka.version`` property)."""
    root = ElementTree.parse(pom_path).getroot()
    version = root.findtext("pom:properties/pom:kafka.version", namespaces=_POM_NAMESPACE)
    if not version:
        raise BrokerError(f"{pom_path} has no kafka.version property. Add one, such as 4.0.1.")
    return version.strip()


def fetch_jars(lib_dir: Path | None = None) -> Path:
    """Copy the broker's jars from Maven Central into ``lib_dir`` unless they are there already.

    Maven runs only when the folder lacks a marker for the current pom. Concurrent callers
    wait on a lock file next to the folder, so only one of them runs Maven. Returns the folder.
    Raises ToolMissingError without ``mvn`` on PATH, BrokerError when Maven fails.
    """
    lib_dir = Path(lib_dir) if lib_dir is not None else DEFAULT_LIB_DIR
    marker = _fetch_marker_text()
    if _read_fetch_marker(lib_dir) == marker:
        return lib_dir

    mvn = shutil.which("mvn")
    if mvn is None:
        raise ToolMissingError(
            "mvn not found on PATH. The Kafka broker's jars come from Maven Central through "
            "Maven, so install Maven 3.6 or newer (Debian: apt-get install maven)."
        )

    lib_dir.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(lib_dir.parent / f".{lib_dir.name}.lock"):
        if _read_fetch_marker(lib_dir) == marker:
            return lib_dir

        logger.info("Fetching Kafka %s jars into %s with Maven", kafka_version(), lib_dir)
        started = time.monotonic()
        # Maven fills a staging folder that then replaces lib_dir in two renames, so no jar of
        # an older pom stays on the classpath and lib_dir is missing only between the renames.
        staging_dir = lib_dir.with_name(f"{lib_dir.name}.fetching-{os.getpid()}")
        shutil.rmtree(staging_dir, ignore_errors=True)
        command = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(POM_PATH),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging_dir}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging_dir, ignore_errors=True)
            output = _last_lines(result.stdout + result.stderr, 30)
            raise BrokerError(
                f"mvn dependency:copy-dependencies failed with exit code {result.returncode} "
                f"for {POM_PATH}. Check that Maven Central is reachable. Maven output:\n{output}"
            )

        jar_count = len(list(staging_dir.glob("*.jar")))
        (staging_dir / _FETCH_MARKER_NAME).write_text(marker)
        _replace_folder(staging_dir, lib_dir)
        logger.info(
            "Fetched %d jars for Kafka %s in %.1f s",
            jar_count,
            kafka_version(),
            time.monotonic() - started,
        )
    return lib_dir


def find_free_ports(count: int, host: str = HOST) -> list[int]:
    """Return ``count`` distinct TCP ports that were free on ``host`` a moment ago.

    NOTE: another process may take a port between this call and the broker's bind. The
    broker then exits with "Address already in use", which wait_ready() reports.
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(eq=False)
class LocalBroker:
    """A single-node Kafka broker (combined broker and controller) listening on 127.0.0.1.

    Start it with start() and wait_ready(), or use it as a context manager that does both
    and stops it on exit. A stopped broker starts again on the same data folder with the
    same cluster id, topics and offsets.
    """

    data_dir: Path
    port: int
    controller_port: int
    node_id: int = 1
    heap: str = "512m"
    num_partitions: int = 4
    properties: dict[str, str] = field(default_factory=dict)
    lib_dir: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _output: IO[bytes] | None = field(default=None, init=False, repr=False)
    # Sizes of the log files at start(), so that log_tail() shows only the current run.
    _log_offsets: dict[Path, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        for name in ("port", "controller_port"):
            value = getattr(self, name)
            if not 0 < value < 65536:
                raise ValueError(f"{name}={value} is invalid. Expected a TCP port, 1 to 65535.")
        if self.port == self.controller_port:
            raise ValueError(
                f"port and controller_port are both {self.port}, but the broker listener and "
                "the controller listener need distinct ports"
            )
        if not _HEAP_PATTERN.fullmatch(self.heap):
            raise ValueError(
                f"heap={self.heap!r} is invalid. Expected a JVM size such as 512m or 1g."
            )
        if self.num_partitions < 1:
            raise ValueError(
                f"num_partitions={self.num_partitions} is invalid. Expected 1 or more."
            )

    @property
    def bootstrap_servers(self) -> str:
        """Address for Kafka clients' ``bootstrap_servers``."""
        return f"{HOST}:{self.port}"

    @property
    def log_dir(self) -> Path:
        """Folder that ``log.dirs`` points to: partitions and the KRaft metadata log."""
        return self.data_dir / "kraft"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def output_path(self) -> Path:
        """File that receives the JVM's stdout and stderr."""
        return self.data_dir / "broker.out"

    @property
    def server_log_path(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def cluster_id(self) -> str | None:
        """Cluster id stored by format(), or None while the log folder is not formatted."""
        meta = self.log_dir / "meta.properties"
        if not meta.is_file():
            return None
        for line in meta.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        return None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit code of the last broker process, or None while it runs or before start()."""
        return self._process.poll() if self._process is not None else None

    def server_properties(self) -> dict[str, str]:
        """Build the broker configuration: listeners, folders, SINGLE_NODE_SETTINGS, overrides."""
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            # A static quorum of this node alone, so formatting needs no --standalone.
            "controller.quorum.voters": f"{self.node_id}@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": str(self.num_partitions),
            "auto.create.topics.enable": "true",
            **SINGLE_NODE_SETTINGS,
        }
        settings.update(self.properties)
        return settings

    def format(self) -> str:
        """Format the log folder with a new cluster id unless it is formatted already.

        Returns the cluster id. Fetches the jars first if needed.
        """
        existing = self.cluster_id
        if existing is not None:
            logger.debug(
                "Kafka log folder %s already formatted, cluster id %s", self.log_dir, existing
            )
            return existing

        self._write_properties()
        cluster_id = self._run_tool("kafka.tools.StorageTool", "random-uuid").strip()
        self._run_tool(
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.properties_path)
        )
        logger.info("Formatted Kafka log folder %s with cluster id %s", self.log_dir, cluster_id)
        return cluster_id

    def start(self) -> None:
        """Start the broker process in its own process group and return without waiting.

        Call wait_ready() before using the broker. Raises BrokerError if this object's broker
        is already running.
        """
        if self.is_running():
            raise BrokerError(
                f"Kafka broker pid {self.pid} is already running at {self.bootstrap_servers}"
            )

        self.format()
        self._write_properties()
        java = _java_executable()
        command = [
            java,
            f"-Xmx{self.heap}",
            # Exit on OutOfMemoryError so that a broker out of heap stops instead of
            # serving some requests and failing others.
            "-XX:+ExitOnOutOfMemoryError",
            *self._jvm_system_properties(),
            "-cp",
            str(fetch_jars(self.lib_dir) / "*"),
            "kafka.Kafka",
            str(self.properties_path),
        ]

        self._close_output()
        self._log_offsets = {
            path: path.stat().st_size if path.is_file() else 0
            for path in (self.output_path, self.server_log_path)
        }
        self._output = self.output_path.open("ab")
        # A new session keeps Ctrl-C in a terminal from reaching the broker directly, so the
        # owner stops it in order, and it lets stop() signal the JVM and any children at once.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
            preexec_fn=terminate_with_parent,
        )
        _started_brokers.add(self)
        logger.info(
            "Started Kafka %s broker pid %d at %s, data in %s",
            kafka_version(),
            self._process.pid,
            self.bootstrap_servers,
            self.data_dir,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the broker accepts TCP connections and returns cluster metadata.

        Raises BrokerNotReadyError, with the last lines of the broker's logs, if the process
        exits or is not ready within ``timeout`` seconds.
        """
        started = time.monotonic()
        deadline = started + timeout
        last_error = "no connection attempt finished"
        while True:
            if not self.is_running():
                raise self._not_ready_error(f"exited with code {self.returncode}", exited=True)
            try:
                self._probe(min(5.0, max(deadline - time.monotonic(), 0.5)))
            except (OSError, KafkaError, _NotReadyYetError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                logger.info(
                    "Kafka broker at %s ready after %.1f s",
                    self.bootstrap_servers,
                    time.monotonic() - started,
                )
                return

            if time.monotonic() >= deadline:
                raise self._not_ready_error(
                    f"was not ready within {timeout:.0f} s (last error: {last_error})", exited=False
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker with SIGTERM, then SIGKILL if it still runs after ``timeout`` seconds.

        Safe to call when the broker is not running.
        """
        process = self._process
        if process is None or process.poll() is not None:
            self._close_output()
            return

        # Step 1: SIGTERM runs Kafka's shutdown hook, which flushes logs and closes cleanly.
        logger.info("Stopping Kafka broker pid %d at %s", process.pid, self.bootstrap_servers)
        started = time.monotonic()
        self._signal_group(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            # Step 2: a broker stuck in shutdown is killed, and recovers its logs on next start.
            logger.warning(
                "Kafka broker pid %d still running %.0f s after SIGTERM, so sending SIGKILL",
                process.pid,
                timeout,
            )
            self._signal_group(signal.SIGKILL)
            process.wait()

        logger.info(
            "Kafka broker pid %d stopped with exit code %s after %.1f s",
            process.pid,
            process.returncode,
            time.monotonic() - started,
        )
        self._close_output()

    def kill(self) -> None:
        """Kill the broker with SIGKILL at once, as a crash would, and wait for it to exit."""
        process = self._process
        if process is None or process.poll() is not None:
            self._close_output()
            return

        self._signal_group(signal.SIGKILL)
        process.wait()
        logger.info("Killed Kafka broker pid %d at %s", process.pid, self.bootstrap_servers)
        self._close_output()

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """Return the error lines and the last lines that the current run wrote to its logs.

        Covers broker.out and logs/server.log from the last start() on, for error messages.
        """
        parts = []
        for path in (self.output_path, self.server_log_path):
            text = _read_from(path, self._log_offsets.get(path, 0))
            if not text:
                continue
            text_lines = text.splitlines()
            error_lines = [line for line in text_lines if _ERROR_LINE_PATTERN.search(line)]
            if error_lines:
                parts.append(f"--- errors in {path} ---\n" + "\n".join(error_lines[-10:]))
            parts.append(f"--- last lines of {path} ---\n" + "\n".join(text_lines[-lines:]))
        return "\n".join(parts) if parts else f"(nothing logged in {self.data_dir} yet)"

    def __enter__(self) -> LocalBroker:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _probe(self, timeout: float) -> None:
        with socket.create_connection((HOST, self.port), timeout=timeout):
            pass
        metadata = _run_in_new_event_loop(self._describe_cluster(timeout))

        node_ids = [broker["node_id"] for broker in metadata["brokers"]]
        if self.node_id not in node_ids:
            raise _NotReadyYetError(
                f"metadata lists brokers {node_ids}, not yet node {self.node_id}"
            )
        expected = self.cluster_id
        if metadata["cluster_id"] != expected:
            # Another Kafka broker returned this metadata, so waiting longer cannot help.
            raise BrokerError(
                f"the Kafka broker at {self.bootstrap_servers} has cluster id "
                f"{metadata['cluster_id']}, but {self.log_dir} was formatted with {expected}, "
                "so another broker is using this port. Stop it or choose another port."
            )

    async def _describe_cluster(self, timeout: float) -> dict[str, Any]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, request_timeout_ms=int(timeout * 1000)
        )
        try:
            await admin.start()
            return await asyncio.wait_for(admin.describe_cluster(), timeout)
        finally:
            await admin.close()

    def _not_ready_error(self, reason: str, *, exited: bool) -> BrokerNotReadyError:
        return BrokerNotReadyError(
            f"Kafka broker at {self.bootstrap_servers} (data {self.data_dir}) {reason}.\n"
            f"{self.log_tail()}",
            bootstrap_servers=self.bootstrap_servers,
            exited=exited,
        )

    def _jvm_system_properties(self) -> list[str]:
        return [
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG_PATH}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
        ]

    def _run_tool(self, main_class: str, *args: str) -> str:
        """Run a Kafka command-line tool on the broker's classpath and return its stdout."""
        command = [
            _java_executable(),
            "-Xmx256m",
            *self._jvm_system_properties(),
            "-cp",
            str(fetch_jars(self.lib_dir) / "*"),
            main_class,
            *args,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(
                f"{main_class} {' '.join(args)} failed with exit code {result.returncode}:\n"
                f"{_last_lines(result.stdout + result.stderr, 30)}"
            )
        return result.stdout

    def _write_properties(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"{key}={_escape_property(value)}" for key, value in self.server_properties().items()
        ]
        self.properties_path.write_text(
            "# Written by hookline.broker.LocalBroker; edits are lost on the next start.\n"
            + "\n".join(lines)
            + "\n"
        )

    def _signal_group(self, signum: signal.Signals) -> None:
        # Called only while the process is not yet reaped, so its pid (the process group id,
        # because of start_new_session) cannot belong to another process.
        assert self._process is not None
        with suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None


# Brokers that this process started, so that interpreter exit does not leave a JVM behind.
_started_brokers: weakref.WeakSet[LocalBroker] = weakref.WeakSet()


@atexit.register
def _stop_started_brokers() -> None:
    for broker in list(_started_brokers):
        if broker.is_running():
            logger.warning("Kafka broker pid %s still running at exit, stopping it", broker.pid)
            broker.stop(timeout=10.0)


def _java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    java = str(candidate) if candidate is not None and candidate.is_file() else shutil.which("java")
    if java is None:
        raise ToolMissingError(
            f"java not found in JAVA_HOME or on PATH. The Kafka broker needs Java "
            f"{MIN_JAVA_VERSION} or newer, so install a JDK or JRE "
            "(Debian: apt-get install openjdk-17-jre-headless)."
        )

    version = _java_major_version(java)
    if version < MIN_JAVA_VERSION:
        raise ToolMissingError(
            f"{java} is Java {version}, but Kafka {kafka_version()} needs Java "
            f"{MIN_JAVA_VERSION} or newer. Install one and put it first on PATH or set JAVA_HOME."
        )
    return java


@cache
def _java_major_version(java: str) -> int:
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    # Java 9+ prints e.g. 'openjdk version "17.0.15"', Java 8 'java version "1.8.0_392"'.
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr)
    if match is None:
        raise ToolMissingError(
            f"could not read the Java version from `{java} -version`: {result.stderr.strip()!r}"
        )
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _fetch_marker_text() -> str:
    digest = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()
    return f"kafka_2.13 {kafka_version()}\npom sha256 {digest}\n"


def _read_fetch_marker(lib_dir: Path) -> str | None:
    try:
        return (lib_dir / _FETCH_MARKER_NAME).read_text()
    except FileNotFoundError:
        return None


def _replace_folder(source: Path, target: Path) -> None:
    if not target.exists():
        source.rename(target)
        return

    retired = target.with_name(f"{target.name}.old-{os.getpid()}")
    shutil.rmtree(retired, ignore_errors=True)
    target.rename(retired)
    source.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _run_in_new_event_loop(coroutine: Coroutine[Any, Any, _T]) -> _T:
    # A thread of its own lets wait_ready() run from sync code and from inside a running
    # event loop (an async test restarting the broker) alike.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-probe") as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _escape_property(value: str) -> str:
    # java.util.Properties reads a backslash as an escape character.
    return value.replace("\\", "\\\\")


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as file:
            # A file smaller than the offset was rolled over or replaced since start().
            if offset <= file.seek(0, os.SEEK_END):
                file.seek(offset)
            else:
                file.seek(0)
            return file.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _last_lines(text: str, count: int) -> str:
    return "\n".join(text.splitlines()[-count:])


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hookline.broker",
        description="Fetch the jars of, or run, a single-node Apache Kafka broker on 127.0.0.1.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fetch = commands.add_parser("fetch", help="copy the broker's jars from Maven Central")
    fetch.add_argument(
        "--lib-dir", type=Path, help=f"folder for the jars (default {DEFAULT_LIB_DIR})"
    )

    run = commands.add_parser(
        "run", help="run the broker in the foreground until SIGTERM or SIGINT"
    )
    run.add_argument(
        "--data-dir", type=Path, required=True, help="folder for the broker's data and logs"
    )
    run.add_argument("--port", type=int, default=9092, help="broker listener port (default 9092)")
    run.add_argument(
        "--controller-port",
        type=int,
        default=9093,
        help="KRaft controller listener port (default 9093)",
    )
    run.add_argument("--node-id", type=int, default=1, help="broker node.id (default 1)")
    run.add_argument(
        "--heap", default="512m", help="JVM maximum heap, e.g. 512m or 1g (default 512m)"
    )
    run.add_argument(
        "--partitions", type=int, default=4, help="num.partitions of new topics (default 4)"
    )
    run.add_argument("--lib-dir", type=Path, help=f"folder of the jars (default {DEFAULT_LIB_DIR})")
    run.add_argument(
        "--ready-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for readiness (default 120)",
    )
    run.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        help="seconds from SIGTERM to SIGKILL (default 30)",
    )
    return parser


def _run_foreground(broker: LocalBroker, ready_timeout: float, stop_timeout: float) -> int:
    ready = threading.Event()
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        logger.info("Received %s, stopping the Kafka broker", signal.Signals(signum).name)
        stop_requested.set()
        if not ready.is_set() and broker.is_running():
            # wait_ready() returns once the JVM exits, so the stop does not wait for readiness.
            broker._signal_group(signal.SIGTERM)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    broker.start()
    try:
        broker.wait_ready(ready_timeout)
        ready.set()
        while not stop_requested.wait(1.0):
            if not broker.is_running():
                logger.error(
                    "Kafka broker exited unexpectedly with code %s.\n%s",
                    broker.returncode,
                    broker.log_tail(),
                )
                return 1
    except BrokerNotReadyError:
        if stop_requested.is_set():
            return 0
        raise
    finally:
        broker.stop(stop_timeout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fetch`` or ``run`` command and return the process exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "fetch":
            print(fetch_jars(args.lib_dir))
            return 0

        try:
            broker = LocalBroker(
                data_dir=args.data_dir,
                port=args.port,
                controller_port=args.controller_port,
                node_id=args.node_id,
                heap=args.heap,
                num_partitions=args.partitions,
                lib_dir=args.lib_dir,
            )
        except ValueError as exc:
            parser.error(str(exc))
        return _run_foreground(broker, args.ready_timeout, args.stop_timeout)
    except BrokerError as exc:
        logger.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
