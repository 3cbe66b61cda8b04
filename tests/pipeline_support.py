"""Run the Hookline processes of a test from a config of their own, and read what they wrote.

`write_config` copies `config/hookline.toml` with free ports and folders, and,
given a suffix, with topic names, consumer group and router app id of their
own, so several pipelines can share one broker. `Pipeline` starts ingest,
router and sink as `hookline` child processes, each in its own process group,
and stops or kills them. `read_topic` and `read_to_end` read topics with
`read_committed`, and `query_sink` and `wait_for_rows` read the audit log
through the sink's query endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from hookline.broker import LocalBroker, fetch_jars
from hookline.cli import DEBUG_LOGGERS_ENV
from hookline.config import HooklineConfig, load_config
from streams.topics import ensure_topics

REPO = Path(__file__).resolve().parent.parent
ROUTES_TEMPLATE = REPO / "config" / "routes.toml"
CONFIG_TEMPLATE = REPO / "config" / "hookline.toml"
# Seconds a stopped process gets between SIGTERM and SIGKILL.
STOP_TIMEOUT_SECONDS = 30.0
BROKER_READY_SECONDS = 120.0
# Faust logs this once the router's worker has started its agent and recovered its table.
ROUTER_READY_TEXT = "[^Worker]: Ready"

Record = tuple[bytes | None, bytes, dict[str, bytes]]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _renamed_topics(suffix: str) -> dict[str, str]:
    """Return the topic names of the template mapped to names ending in SUFFIX."""
    return {
        '"webhooks.raw"': f'"webhooks.raw.{suffix}"',
        '"webhooks.rejected"': f'"webhooks.rejected.{suffix}"',
        '"webhooks.unrouted"': f'"webhooks.unrouted.{suffix}"',
        '"webhooks.deadletter"': f'"webhooks.deadletter.{suffix}"',
        '"events.{source}"': f'"events.{suffix}.{{source}}"',
        'app_id = "hookline-router"': f'app_id = "hookline-router-{suffix}"',
        'group_id = "hookline-audit"': f'group_id = "hookline-audit-{suffix}"',
    }


def write_routes(folder: Path, suffix: str) -> Path:
    """Write config/routes.toml with every topic renamed to `events.<SUFFIX>.<rest>`."""
    text = ROUTES_TEMPLATE.read_text().replace('"events.', f'"events.{suffix}.')
    path = folder / "routes.toml"
    path.write_text(text)
    return path


def write_config(
    folder: Path,
    bootstrap: str,
    *,
    suffix: str | None = None,
    dsn: str | None = None,
    name: str = "hookline.toml",
) -> Path:
    """Write a config like config/hookline.toml with free ports and folders in FOLDER.

    With SUFFIX, every topic, the router's app id and the sink's consumer group
    end in SUFFIX, and routing rules go to `events.<SUFFIX>.*` topics. DSN
    replaces the chDB folder in FOLDER as the audit store.
    """
    template = CONFIG_TEMPLATE.read_text()
    rules_file = write_routes(folder, suffix) if suffix else ROUTES_TEMPLATE
    dsn = dsn or f"chdb://{folder / 'clickhouse'}"
    replacements = {
        'bootstrap_servers = "127.0.0.1:9092"': f'bootstrap_servers = "{bootstrap}"',
        "port = 8000": f"port = {free_port()}",
        "query_port = 8124": f"query_port = {free_port()}",
        'rules_file = "config/routes.toml"': f'rules_file = "{rules_file}"',
        'data_dir = "data/router"': f'data_dir = "{folder / "router"}"',
        'dsn = "chdb://data/clickhouse"': f'dsn = "{dsn}"',
        "produce_timeout_seconds = 5.0": "produce_timeout_seconds = 3.0",
        "retry_after_seconds = 5": "retry_after_seconds = 7",
    }
    if suffix:
        replacements.update(_renamed_topics(suffix))
    for old, new in replacements.items():
        assert old in template, f"config template changed: {old!r} not found"
        template = template.replace(old, new)
    # Port 6066 is the dev router's; give this router its own.
    template = template.replace("[router]", f"[router]\nweb_port = {free_port()}")
    path = folder / name
    path.write_text(template)
    return path


def copy_config(config_path: Path, name: str, **settings: str | int) -> Path:
    """Write a copy of CONFIG_PATH, named NAME, with each `key = value` line of SETTINGS replaced.

    Only keys that occur once in the file, such as `dsn`, `web_port` or `data_dir`, are safe.
    """
    lines = []
    replaced = set()
    for line in config_path.read_text().splitlines():
        key = line.partition(" = ")[0]
        if key in settings:
            value = settings[key]
            line = f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}"
            replaced.add(key)
        lines.append(line)
    missing = set(settings) - replaced
    assert not missing, f"keys {sorted(missing)} not found in {config_path}"
    path = config_path.with_name(name)
    path.write_text("\n".join(lines) + "\n")
    return path


class Pipeline:
    """The Hookline processes of one test, started from one config file.

    Each process is an instance with a name: the command name (`ingest`,
    `router`, `sink`) by default, or another name for a second router.
    """

    def __init__(self, config_path: Path, log_dir: Path) -> None:
        self.config_path = config_path
        self.config: HooklineConfig = load_config(config_path)
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # Per instance: the command, config path and extra environment it was started with.
        self.launches: dict[str, tuple[str, Path | None, dict[str, str]]] = {}
        self.restarts: Counter[str] = Counter()

    @property
    def ingest_url(self) -> str:
        return f"http://{self.config.ingest.host}:{self.config.ingest.port}"

    def log_path(self, instance: str) -> Path:
        return self.log_dir / f"{instance}.log"

    def start(
        self,
        command: str,
        *,
        instance: str | None = None,
        config_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `hookline COMMAND` as INSTANCE (default COMMAND) with extra ENV variables."""
        instance = instance or command
        running = self.processes.get(instance)
        assert running is None or running.poll() is not None, f"{instance} is already running"

        config = config_path or self.config_path
        argv = [sys.executable, "-m", "hookline.cli", "--config", str(config), command]
        # The router logs each repeat it drops, for the fault tests' loss traces.
        environment = {**os.environ, DEBUG_LOGGERS_ENV: "streams.router", **(env or {})}
        with self.log_path(instance).open("ab") as log:
            process = subprocess.Popen(
                argv,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        self.processes[instance] = process
        self.launches[instance] = (command, config_path, dict(env or {}))
        return process

    def restart_exited(self) -> list[str]:
        """Start again, as `hookline run` does, each instance that exited; return their names.

        An instance stopped or killed through this object is not restarted.
        """
        restarted = []
        for instance, process in list(self.processes.items()):
            if process.poll() is None:
                continue
            command, config_path, env = self.launches[instance]
            self.start(command, instance=instance, config_path=config_path, env=env)
            self.restarts[instance] += 1
            restarted.append(instance)
        return restarted

    def stop(self, instance: str, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """Stop INSTANCE with SIGTERM, then SIGKILL after TIMEOUT; return its exit code."""
        process = self.processes.pop(instance, None)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
        return process.returncode

    def kill(self, instance: str) -> None:
        """Kill INSTANCE and its children with SIGKILL, as a crash would."""
        process = self.processes.pop(instance, None)
        if process is not None:
            _kill_group(process)

    def stop_all(self, timeout: float = 15.0) -> None:
        """Stop every instance, ingest first and the sink last."""
        order = {"ingest": 0, "router": 1, "sink": 2}
        for instance in sorted(self.processes, key=lambda name: order.get(name.split("-")[0], 1)):
            self.stop(instance, timeout)

    def is_running(self, instance: str) -> bool:
        process = self.processes.get(instance)
        return process is not None and process.poll() is None

    def log_tail(self, instance: str, size: int = 3000) -> str:
        path = self.log_path(instance)
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def assert_running(self, *instances: str) -> None:
        """Fail with the log tail of each of INSTANCES (default all) that has exited."""
        for instance in instances or tuple(self.processes):
            process = self.processes.get(instance)
            assert process is not None, f"{instance} was not started"
            assert process.poll() is None, (
                f"{instance} exited with code {process.returncode}:\n{self.log_tail(instance)}"
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until ingest's /readyz returns 200, failing early if any process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.ingest_url}/readyz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError("ingest was not ready in time")

    def wait_sink(self, timeout: float = 60.0) -> None:
        """Wait until the sink's query endpoint answers, failing early if the sink exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running("sink")
            with contextlib.suppress(httpx.TransportError):
                query_sink(self.config, "SELECT 1")
                return
            time.sleep(0.2)
        raise AssertionError(
            f"the sink's query endpoint was not up in time:\n{self.log_tail('sink')}"
        )

    def log_size(self, instance: str) -> int:
        """Return the size of INSTANCE's log, to wait for text logged after this point."""
        path = self.log_path(instance)
        return path.stat().st_size if path.exists() else 0

    def wait_log(self, instance: str, text: str, timeout: float = 60.0, start: int = 0) -> None:
        """Wait until INSTANCE's log contains TEXT after byte offset START."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log_path(instance).open("rb") as log:
                log.seek(start)
                if text.encode() in log.read():
                    return
            time.sleep(0.2)
        raise AssertionError(f"{instance} did not log {text!r}:\n{self.log_tail(instance)}")


@contextmanager
def running_broker(folder: Path) -> Iterator[LocalBroker]:
    """Start a broker of its own in FOLDER on free ports; stop it on exit, even after a kill."""
    fetch_jars()
    broker = LocalBroker(data_dir=folder, port=free_port(), controller_port=free_port())
    broker.start()
    try:
        broker.wait_ready(BROKER_READY_SECONDS)
        yield broker
    finally:
        broker.stop()


@contextmanager
def running_pipeline(
    broker: LocalBroker,
    folder: Path,
    *,
    instances: Sequence[str] = ("sink", "router", "ingest"),
    dsn: str | None = None,
) -> Iterator[Pipeline]:
    """Run the INSTANCES of a pipeline with topics of its own on BROKER; stop them all on exit.

    Creates the topics first and returns once ingest is ready and, when
    started, the router's worker and the sink's query endpoint are up.
    """
    suffix = uuid.uuid4().hex[:10]
    config_path = write_config(folder, broker.bootstrap_servers, suffix=suffix, dsn=dsn)
    pipeline = Pipeline(config_path, folder)
    # A thread of its own runs the coroutine whether or not the caller runs an event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, ensure_topics(pipeline.config)).result()
    try:
        for instance in instances:
            pipeline.start(instance)
        if "ingest" in instances:
            pipeline.wait_ready()
        if "router" in instances:
            pipeline.wait_log("router", ROUTER_READY_TEXT, 120.0)
        if "sink" in instances and dsn is None:
            pipeline.wait_sink()
        yield pipeline
    finally:
        pipeline.stop_all()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


async def read_topic(
    bootstrap: str,
    topic: str | Sequence[str],
    expected: int,
    timeout: float = 60.0,
    quiet_seconds: float = 2.0,
) -> list[Record]:
    """Read TOPIC (one name or several) from the start with read_committed.

    Returns when EXPECTED records arrived and QUIET_SECONDS passed without
    more, or when TIMEOUT ends.
    """
    topics = [topic] if isinstance(topic, str) else list(topic)
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
        metadata_max_age_ms=2000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    last_record = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                for record in batch:
                    records.append((record.key, record.value, dict(record.headers)))
                    last_record = time.monotonic()
            if len(records) >= expected and time.monotonic() - last_record > quiet_seconds:
                break
    finally:
        await consumer.stop()
    return records


async def read_to_end(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Record]:
    """Read TOPIC from the start up to the end offsets it has once its partitions are known."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    end: dict[TopicPartition, int] = {}
    try:
        while True:
            assert time.monotonic() < deadline, f"{topic} was not read to its end in time"
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend((record.key, record.value, dict(record.headers)) for record in batch)
            # Without a group the consumer takes every partition once it has the metadata.
            partitions = consumer.assignment()
            if partitions and not end:
                end = await consumer.end_offsets(list(partitions))
            if end and all([await consumer.position(tp) >= end[tp] for tp in end]):
                return records
    finally:
        await consumer.stop()


def query_sink(config: HooklineConfig, sql: str, timeout: float = 30.0) -> list[list[Any]]:
    """Run SQL through the sink's query endpoint and return the rows.

    Unlike `sinks.query.run_query`, this never opens the chDB folder in the
    test process, which would lock it against a sink started later.

    Raises:
        httpx.TransportError: no sink listens on the query port.
        AssertionError: the sink returned an error.
    """
    url = f"http://{config.audit.query_host}:{config.audit.query_port}/query"
    response = httpx.post(url, content=sql.encode(), timeout=timeout, trust_env=False)
    assert response.status_code == 200, f"query failed: {response.text}"
    rows: list[list[Any]] = response.json()["rows"]
    return rows


def wait_for_rows(
    config: HooklineConfig, sql: str, expected: int, timeout: float = 60.0
) -> list[list[Any]]:
    """Run SQL on the sink every 0.5 s until it returns EXPECTED rows or TIMEOUT ends."""
    deadline = time.monotonic() + timeout
    rows: list[list[Any]] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            rows = query_sink(config, sql)
            if len(rows) >= expected:
                return rows
        time.sleep(0.5)
    return rows
