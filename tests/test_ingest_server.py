"""ingest.server.run in a child process: a real uvicorn (uvloop, httptools) on a free port."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hookline.broker import find_free_ports
from hookline.config import load_config
from ingest.samples import build_sample

STARTUP_TIMEOUT_SECONDS = 30.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """Run ingest with its broker address on a port where nothing listens."""
    http_port, broker_port = find_free_ports(2)
    config_path = tmp_path / "hookline.toml"
    config_path.write_text(
        f"""
[kafka]
bootstrap_servers = "127.0.0.1:{broker_port}"
produce_timeout_seconds = 1.0

[ingest]
host = "127.0.0.1"
port = {http_port}
retry_after_seconds = 3

[sources.stripe]
scheme = "stripe"
secrets = ["whsec_test_only_server_secret"]
event_id = "json:/id"
max_body_bytes = 2048
"""
    )
    log_path = tmp_path / "ingest.log"
    code = (
        "import sys; from hookline.config import load_config; from ingest.server import run; "
        "run(load_config(sys.argv[1]))"
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log_path.read_text()) from None
                time.sleep(0.1)
        yield url, config_path, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_server_responds_without_broker(server):
    url, config_path, _ = server
    headers, body = build_sample(load_config(config_path).sources["stripe"])

    health = httpx.get(f"{url}/healthz")
    ready = httpx.get(f"{url}/readyz")
    webhook = httpx.post(f"{url}/webhooks/stripe", content=body, headers=headers)

    assert health.status_code == 200
    assert ready.status_code == 503
    assert webhook.status_code == 503
    assert webhook.headers["retry-after"] == "3"


def test_server_freezes_startup_objects(server, tmp_path):
    log = (tmp_path / "ingest.log").read_text()

    frozen = re.search(r"froze (\d+) start-up objects", log)
    assert frozen is not None, log
    assert int(frozen.group(1)) > 1000


def test_server_rejects_chunked_body_over_limit(server):
    url, _, _ = server

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"x" * 1024

    response = httpx.post(
        f"{url}/webhooks/stripe",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_server_stops_on_sigterm(server, tmp_path):
    _, _, process = server

    process.send_signal(signal.SIGTERM)
    returncode = process.wait(timeout=30)

    log = (tmp_path / "ingest.log").read_text()
    # uvicorn re-raises the signal after a graceful shutdown.
    assert returncode in (0, -signal.SIGTERM)
    assert "Kafka producer stopped" in log
    assert "ingest stopped" in log
