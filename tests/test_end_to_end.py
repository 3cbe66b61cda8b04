"""End-to-end test: real broker, ingest, router and audit sink as separate processes.

The pipeline runs exactly as `hookline run` starts it, with a config of its own
(free ports, its own broker and chDB folder), so this test may stop the broker.
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
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from hookline.broker import LocalBroker, fetch_jars
from hookline.config import HooklineConfig, load_config
from ingest.samples import build_sample
from sinks.query import run_query
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, bootstrap: str) -> Path:
    """Write a config like config/hookline.toml with free ports and folders in FOLDER."""
    template = (REPO / "config" / "hookline.toml").read_text()
    replacements = {
        'bootstrap_servers = "127.0.0.1:9092"': f'bootstrap_servers = "{bootstrap}"',
        "port = 8000": f"port = {free_port()}",
        "query_port = 8124": f"query_port = {free_port()}",
        'rules_file = "config/routes.toml"': f'rules_file = "{REPO / "config" / "routes.toml"}"',
        'data_dir = "data/router"': f'data_dir = "{folder / "router"}"',
        'dsn = "chdb://data/clickhouse"': f'dsn = "chdb://{folder / "clickhouse"}"',
        "produce_timeout_seconds = 5.0": "produce_timeout_seconds = 3.0",
        "retry_after_seconds = 5": "retry_after_seconds = 7",
    }
    for old, new in replacements.items():
        assert old in template, f"config template changed: {old!r} not found"
        template = template.replace(old, new)
    # Port 6066 is the dev router's; give this router its own.
    template = template.replace("[router]", f"[router]\nweb_port = {free_port()}")
    path = folder / "hookline.toml"
    path.write_text(template)
    return path


class Pipeline:
    """The three Hookline processes of one test, started from one config file."""

    def __init__(self, config_path: Path, log_dir: Path) -> None:
        self.config_path = config_path
        self.config: HooklineConfig = load_config(config_path)
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def ingest_url(self) -> str:
        return f"http://{self.config.ingest.host}:{self.config.ingest.port}"

    def start(self, name: str) -> None:
        command = [sys.executable, "-m", "hookline.cli", "--config", str(self.config_path), name]
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                log = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                assert process.poll() is None, f"{name} exited early:\n{log}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.ingest_url}/readyz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError("ingest was not ready in time")


@pytest.fixture(scope="module")
def e2e_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    fetch_jars()
    folder = tmp_path_factory.mktemp("e2e-kafka")
    broker = LocalBroker(data_dir=folder, port=free_port(), controller_port=free_port())
    broker.format()
    broker.start()
    broker.wait_ready(120.0)
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def pipeline(
    e2e_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    folder = tmp_path_factory.mktemp("e2e-pipeline")
    running = Pipeline(write_config(folder, e2e_broker.bootstrap_servers), folder)
    asyncio.run(ensure_topics(running.config))
    for name in ("sink", "router", "ingest"):
        running.start(name)
    running.wait_ready()
    yield running
    for name in ("ingest", "router", "sink"):
        running.stop(name)


def post(pipeline: Pipeline, source: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(
        f"{pipeline.ingest_url}/webhooks/{source}", content=body, headers=headers, timeout=30.0
    )


async def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    """Read TOPIC from the start until EXPECTED records arrived and 2 s passed without more."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
    )
    await consumer.start()
    records: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
    deadline = time.monotonic() + timeout
    last_record = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                for record in batch:
                    records.append((record.key, record.value, dict(record.headers)))
                    last_record = time.monotonic()
            if len(records) >= expected and time.monotonic() - last_record > 2.0:
                break
    finally:
        await consumer.stop()
    return records


def wait_for_rows(config: HooklineConfig, sql: str, expected: int, timeout: float = 60.0) -> list:
    deadline = time.monotonic() + timeout
    rows: list = []
    while time.monotonic() < deadline:
        _, rows = run_query(config, sql)
        if len(rows) >= expected:
            return rows
        time.sleep(0.5)
    return rows


def test_pipeline_routes_and_audits_deliveries(pipeline: Pipeline) -> None:
    config = pipeline.config
    accepted: dict[str, bytes] = {}  # receipt id -> body
    event_ids: dict[str, str] = {}  # provider event id -> source

    # Distinct events from each of the three schemes.
    sent = []
    for source in ("stripe", "stripe", "github", "standard-webhooks"):
        headers, body = build_sample(config.sources[source])
        response = post(pipeline, source, headers, body)
        assert response.status_code == 200, response.text
        accepted[response.json()["receipt_id"]] = body
        sent.append((source, headers, body))

    # A provider retry of the first Stripe event: accepted and audited again.
    source, headers, body = sent[0]
    retry = post(pipeline, source, headers, body)
    assert retry.status_code == 200, retry.text
    accepted[retry.json()["receipt_id"]] = body

    # A forgery: the body of a real event with another event's signature.
    forged_headers = dict(sent[1][1])
    forged = post(pipeline, "stripe", forged_headers, sent[0][2] + b" ")
    assert forged.status_code == 401
    assert forged.json()["error"] == "no_matching_signature"

    # Every distinct event once in its routed topic, with CloudEvents headers.
    payments = asyncio.run(read_topic(config.kafka.bootstrap_servers, "events.stripe.payments", 2))
    ids = Counter(headers["ce_id"].decode() for _, _, headers in payments)
    assert len(payments) == 2, ids
    assert set(ids.values()) == {1}
    for _, value, headers in payments:
        assert headers["ce_specversion"] == b"1.0"
        assert headers["ce_type"] == b"payment_intent.succeeded"
        assert headers["ce_source"]
        assert headers["ce_time"]
        assert value in {sent[0][2], sent[1][2]}
        event_ids[headers["ce_id"].decode()] = "stripe"

    pushes = asyncio.run(read_topic(config.kafka.bootstrap_servers, "events.github.push", 1))
    assert len(pushes) == 1
    assert pushes[0][1] == sent[2][2]
    assert pushes[0][2]["ce_type"] == b"push"

    default = asyncio.run(read_topic(config.kafka.bootstrap_servers, "events.standard-webhooks", 1))
    assert len(default) == 1
    assert default[0][1] == sent[3][2]

    # Every accepted delivery, the retry too, is one row with the body intact.
    quoted = ", ".join(f"'{receipt}'" for receipt in accepted)
    rows = wait_for_rows(
        config,
        "SELECT toString(receipt_id), hex(body), count() OVER (PARTITION BY receipt_id) "
        f"FROM webhook_events WHERE toString(receipt_id) IN ({quoted})",
        len(accepted),
    )
    assert len(rows) == len(accepted)
    for receipt_id, body_hex, copies in rows:
        assert copies == 1
        assert bytes.fromhex(body_hex) == accepted[receipt_id]

    rejections = wait_for_rows(
        config,
        "SELECT source, status, reason FROM webhook_rejections WHERE reason != ''",
        1,
    )
    assert ("stripe", 401, "no_matching_signature") in [tuple(row) for row in rejections]


def test_pipeline_answers_503_while_broker_down(
    pipeline: Pipeline, e2e_broker: LocalBroker
) -> None:
    stripe = pipeline.config.sources["stripe"]
    e2e_broker.stop()
    try:
        for _ in range(3):
            headers, body = build_sample(stripe)
            response = post(pipeline, "stripe", headers, body)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "7"
    finally:
        e2e_broker.start()
        e2e_broker.wait_ready(120.0)

    # Ingest reconnects by itself; a provider's retry then succeeds.
    headers, body = build_sample(stripe)
    deadline = time.monotonic() + 60.0
    status = 0
    while time.monotonic() < deadline:
        status = post(pipeline, "stripe", headers, body).status_code
        if status == 200:
            break
        assert status == 503
        time.sleep(1.0)
    assert status == 200
