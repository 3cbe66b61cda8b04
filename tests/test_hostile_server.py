"""Hostile clients against a real uvicorn serving ingest: slow, idle, many and oversized.

The module also contains the servers that the other hostile and fuzz tests use:

- `ServerProcess` runs ingest with `ingest.server.server_config` in a child
  process, so its memory can be measured and a crash cannot take the tests
  down. Its producer is `CountingProducer` (acknowledges at once, keeps
  nothing) or the real Kafka producer.
- `ThreadServer` runs the same uvicorn settings in a thread of the test
  process, so a test can read the records of a `RecordingProducer`.

Run as a script (`python tests/test_hostile_server.py SPEC.json`), it is the
child process of `ServerProcess`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from hookline.config import HooklineConfig, parse_config
from hookline.errors import ConfigError
from ingest.app import create_app
from ingest.producer import RecordProducer
from ingest.samples import build_sample
from ingest.server import server_config

REPO = Path(__file__).resolve().parent.parent

HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 30.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Head and body limits of the servers in this module, short so the tests are quick.
HEAD_TIMEOUT_SECONDS = 1.0
BODY_TIMEOUT_SECONDS = 1.5
# Generous bound on the server's memory growth over this module, in KiB.
RSS_GROWTH_BOUND_KIB = 100 * 1024
# How long a test waits for the server to drop a slow client. Far above the
# timeouts, because the bound under test is the server's, not this one.
DROP_WAIT_SECONDS = 20.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def repository_config(**ingest: Any) -> dict[str, Any]:
    """Return config/hookline.toml as a dict, with free ports and the given [ingest] settings.

    The broker address is a free port where nothing listens, so no test
    reaches a broker by accident.
    """
    with (REPO / "config" / "hookline.toml").open("rb") as file:
        raw = tomllib.load(file)
    raw["kafka"]["bootstrap_servers"] = f"{HOST}:{free_port()}"
    raw["ingest"].update({"host": HOST, "port": free_port(), **ingest})
    raw["audit"]["query_port"] = free_port()
    raw["router"]["web_port"] = free_port()
    return raw


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string for the text used here.
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def write_toml(raw: dict[str, Any], path: Path) -> Path:
    """Write a config dict shaped like config/hookline.toml (sections, then sources) to PATH."""
    lines = []
    for section, table in raw.items():
        if section == "sources":
            continue
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
    for name, source in raw.get("sources", {}).items():
        lines.append(f"[sources.{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in source.items())
    path.write_text("\n".join(lines) + "\n")
    return path


# --- servers --------------------------------------------------------------------------------


class CountingProducer:
    """RecordProducer double for a server process: acknowledges at once and counts records.

    It keeps no record, so a long fuzz run measures the server's memory, not the double's.
    """

    connected = True

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def check_ready(self) -> bool:
        return True

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        self.counts[topic] += 1
        return None


class ServerProcess:
    """ingest served by uvicorn in a child process on a free loopback port.

    Args:
        raw_config: The config as a TOML-shaped dict, passed to `parse_config`.
        folder: Where the spec file and the log go.
        producer: "counting" for `CountingProducer`, "kafka" for the real producer.
        log_level: Root log level of the child process.
    """

    def __init__(
        self,
        raw_config: dict[str, Any],
        folder: Path,
        *,
        producer: str = "counting",
        log_level: str = "INFO",
    ) -> None:
        self.config = parse_config(raw_config)
        self.port = self.config.ingest.port
        self.url = f"http://{HOST}:{self.port}"
        self.spec_path = folder / f"ingest-{self.port}.json"
        self.log_path = folder / f"ingest-{self.port}.log"
        spec = {"config": raw_config, "producer": producer, "log_level": log_level}
        self.spec_path.write_text(json.dumps(spec))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServerProcess:
        """Start the child process and wait until /healthz returns 200."""
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, __file__, str(self.spec_path)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self.is_healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"ingest did not start:\n{self.log_text()}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """Stop the child with SIGTERM, and SIGKILL it after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def is_healthy(self) -> bool:
        """Return True when GET /healthz returns 200 on a new connection."""
        response = exchange(self.port, build_request("GET", "/healthz"), timeout=5.0)
        return response is not None and response.status == 200

    def rss_kib(self) -> int:
        """Return the resident set size of the child process in KiB, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("VmRSS missing from /proc status")

    def metric(self, name: str) -> float:
        """Return the sum of the samples of metric NAME (a full sample name) on /metrics."""
        response = exchange(self.port, build_request("GET", "/metrics"))
        assert response is not None and response.status == 200
        total = 0.0
        for line in response.body.decode().splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ThreadServer:
    """ingest served by uvicorn in a thread of this process, with the settings of `run`.

    Args:
        config: The deployment config; its [ingest] host and port are ignored.
        producer: The producer the application uses.
        clock: The application clock, as in `create_app`.
    """

    def __init__(
        self,
        config: HooklineConfig,
        producer: RecordProducer,
        clock: Any = time.time,
    ) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.app = create_app(config, producer=producer, clock=clock)
        self.server = uvicorn.Server(server_config(config, self.app, HOST, self.port))
        self.thread = threading.Thread(target=self.server.run, name="ingest-under-test")

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until no rejection record is still being produced in the background."""
        rejections = self.app.state.receiver.rejections
        deadline = time.monotonic() + timeout
        while rejections.pending and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("ingest did not start in its thread")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(30.0)
        assert not self.thread.is_alive(), "ingest thread did not stop"


# --- raw HTTP -------------------------------------------------------------------------------


@dataclass
class RawResponse:
    """A response read from a socket: status, lower-case headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def build_request(
    method: str,
    path: str,
    headers: Sequence[tuple[str, str | bytes]] = (),
    body: bytes = b"",
    *,
    content_length: bool = True,
) -> bytes:
    """Return the bytes of an HTTP/1.1 request with `Connection: close`.

    Header values may be bytes, to send bytes that are not valid UTF-8.
    Content-Length is added unless CONTENT_LENGTH is False or a header sets it.
    """
    lines = [f"{method} {path} HTTP/1.1".encode(), f"Host: {HOST}".encode()]
    names = set()
    for name, value in headers:
        names.add(name.lower())
        raw_value = value if isinstance(value, bytes) else value.encode()
        lines.append(name.encode() + b": " + raw_value)
    if content_length and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}".encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def read_response(sock: socket.socket) -> RawResponse | None:
    """Read one response from SOCK, or return None when the server closed without one."""
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        body = response.read()
    except (http.client.RemoteDisconnected, ConnectionResetError, http.client.IncompleteRead):
        return None
    headers = {name.lower(): value for name, value in response.getheaders()}
    return RawResponse(response.status, headers, body)


def exchange(port: int, data: bytes, timeout: float = 30.0) -> RawResponse | None:
    """Send DATA on a new connection and read the response.

    Returns None when the server closed the connection without a response,
    which it does for example after a head it rejected mid-send.
    """
    try:
        sock = socket.create_connection((HOST, port), timeout=timeout)
    except ConnectionRefusedError:
        return None
    with sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_response(sock)


def wait_closed(sock: socket.socket, timeout: float) -> bytes | None:
    """Read from SOCK until the server closes it; return what it sent, or None on timeout."""
    sock.settimeout(timeout)
    received = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk
    except ConnectionResetError:
        return received
    except TimeoutError:
        return None


def signed_stripe_request(config: HooklineConfig) -> bytes:
    headers, body = build_sample(config.sources["stripe"])
    return build_request("POST", "/webhooks/stripe", list(headers.items()), body)


# --- the tests of this module ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    raw = repository_config(
        request_head_timeout_seconds=HEAD_TIMEOUT_SECONDS,
        body_read_timeout_seconds=BODY_TIMEOUT_SECONDS,
    )
    with ServerProcess(raw, tmp_path_factory.mktemp("hostile-server")) as process:
        for _ in range(20):
            exchange(process.port, signed_stripe_request(process.config))
        baseline = process.rss_kib()
        yield process

        rss = process.rss_kib()
        print(f"\nhostile server RSS: {baseline} KiB -> {rss} KiB")
        assert process.is_running(), process.log_text()
        assert rss - baseline < RSS_GROWTH_BOUND_KIB


def test_idle_connection_closed_after_head_timeout(server):
    with socket.create_connection((HOST, server.port)) as sock:
        received = wait_closed(sock, DROP_WAIT_SECONDS)

    assert received == b""


def test_partial_head_gets_408(server):
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")
        received = wait_closed(sock, DROP_WAIT_SECONDS)

    assert received is not None
    assert received.startswith(b"HTTP/1.1 408 ")


def test_slow_header_sender_dropped(server):
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\n")
        started = time.monotonic()
        dropped = False
        # One header byte every 0.2 s: each byte would reset an idle timer.
        while time.monotonic() - started < DROP_WAIT_SECONDS:
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            time.sleep(0.2)

    assert dropped


def test_slow_body_sender_gets_408(server):
    headers = [("Content-Type", "application/json"), ("Content-Length", "1000")]
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(build_request("POST", "/webhooks/stripe", headers))
        sock.settimeout(0.2)
        response = b""
        started = time.monotonic()
        while time.monotonic() - started < DROP_WAIT_SECONDS:
            try:
                sock.sendall(b"{")
                response += sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if b"\r\n\r\n" in response:
                break

    assert response.startswith(b"HTTP/1.1 408 ")
    assert b'"error":"body_read_timeout"' in response
    assert b"connection: close" in response.lower()


def test_slow_clients_do_not_block_others(server):
    slow = []
    try:
        for _ in range(50):
            sock = socket.create_connection((HOST, server.port))
            sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
            slow.append(sock)

        response = exchange(server.port, signed_stripe_request(server.config), timeout=10.0)
    finally:
        for sock in slow:
            sock.close()

    assert response is not None
    assert response.status == 200


def test_many_idle_connections_others_served(server):
    idle = [socket.create_connection((HOST, server.port)) for _ in range(300)]
    try:
        health = exchange(server.port, build_request("GET", "/healthz"), timeout=10.0)
        webhook = exchange(server.port, signed_stripe_request(server.config), timeout=10.0)
        closed = [wait_closed(sock, DROP_WAIT_SECONDS) for sock in idle[:20]]
    finally:
        for sock in idle:
            sock.close()

    assert health is not None and health.status == 200
    assert webhook is not None and webhook.status == 200
    assert closed == [b""] * 20


@pytest.mark.parametrize(
    ("count", "value_size"),
    [
        pytest.param(5000, 1, id="5000-headers"),
        pytest.param(1, 1024 * 1024, id="1-mib-value"),
        pytest.param(1, 64 * 1024 * 1024, id="64-mib-value"),
    ],
)
def test_header_flood_gets_431_or_close(server, count, value_size):
    headers = [(f"X-Flood-{index}", b"v" * value_size) for index in range(count)]
    response = exchange(server.port, build_request("POST", "/webhooks/stripe", headers))

    assert response is None or response.status == 431
    assert server.is_healthy()


def test_long_request_line_gets_431(server):
    path = "/webhooks/stripe?" + "a" * (128 * 1024)
    response = exchange(server.port, build_request("POST", path))

    assert response is None or response.status == 431
    assert server.is_healthy()


def test_many_small_headers_under_limit_accepted(server):
    headers, body = build_sample(server.config.sources["stripe"])
    extra = [(f"X-Extra-{index}", "v") for index in range(500)]
    request = build_request("POST", "/webhooks/stripe", [*headers.items(), *extra], body)

    response = exchange(server.port, request)

    assert response is not None
    assert response.status == 200


def test_content_length_over_limit_413_without_body(server):
    headers = [("Content-Type", "application/json"), ("Content-Length", str(10**12))]
    with socket.create_connection((HOST, server.port), timeout=10.0) as sock:
        sock.sendall(build_request("POST", "/webhooks/stripe", headers))
        response = read_response(sock)
        after = wait_closed(sock, DROP_WAIT_SECONDS)

    assert response is not None
    assert response.status == 413
    assert response.headers["connection"] == "close"
    assert after == b""


def test_chunked_body_over_limit_413(server):
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40))
    headers = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    request = build_request("POST", "/webhooks/stripe", headers, chunks + b"0\r\n\r\n")

    response = exchange(server.port, request)

    assert response is None or response.status == 413
    assert server.is_healthy()


def test_pipelined_requests_all_answered(server):
    # The second request's head arrives while the first is served, so the
    # head timer must not fire for it.
    first = build_request("GET", "/healthz").replace(b"Connection: close\r\n", b"")
    second = signed_stripe_request(server.config)
    with socket.create_connection((HOST, server.port), timeout=10.0) as sock:
        sock.sendall(first + second)
        received = wait_closed(sock, DROP_WAIT_SECONDS)

    assert received is not None
    assert received.count(b"HTTP/1.1 200 OK") == 2


def test_keep_alive_connection_reused_then_closed(server):
    request = build_request("GET", "/healthz").replace(b"Connection: close\r\n", b"")
    with socket.create_connection((HOST, server.port), timeout=10.0) as sock:
        sock.sendall(request)
        first = read_response(sock)
        sock.sendall(request)
        second = read_response(sock)
        after = wait_closed(sock, DROP_WAIT_SECONDS)

    assert first is not None and first.status == 200
    assert second is not None and second.status == 200
    assert after == b""


@pytest.mark.parametrize(
    "setting",
    [
        "request_head_timeout_seconds",
        "max_request_head_bytes",
        "body_read_timeout_seconds",
        "keep_alive_timeout_seconds",
    ],
)
@pytest.mark.parametrize("value", [0, -1, "10", True])
def test_server_config_rejects_invalid_limit(setting, value):
    config = parse_config(repository_config(**{setting: value}))

    with pytest.raises(ConfigError, match=setting):
        server_config(config, create_app(config, producer=CountingProducer()))


def test_server_config_applies_limits():
    raw = repository_config(request_head_timeout_seconds=3.5, max_request_head_bytes=1000)
    config = parse_config(raw)

    settings = server_config(config, create_app(config, producer=CountingProducer()))

    assert settings.http.head_timeout_seconds == 3.5
    assert settings.http.max_head_bytes == 1000
    assert settings.timeout_keep_alive == config.ingest.keep_alive_timeout_seconds
    assert settings.port == config.ingest.port


# --- child process entry point --------------------------------------------------------------


def _serve(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    logging.basicConfig(level=spec["log_level"], format=LOG_FORMAT)
    config = parse_config(spec["config"])
    producer = CountingProducer() if spec["producer"] == "counting" else None
    app = create_app(config, producer=producer)
    uvicorn.Server(server_config(config, app)).run()


if __name__ == "__main__":
    _serve(sys.argv[1])
