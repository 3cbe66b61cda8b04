"""Requests rejected for their head (408 head timeout, 431 head too large) are recorded.

Ingest runs in a thread (`ThreadServer`) with a recording producer and short head
limits, and each test checks the record on the rejected topic: status, reason,
source, remote address and receipt id, with no body.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from test_hostile_server import (
    HOST,
    ThreadServer,
    build_request,
    exchange,
    repository_config,
    wait_closed,
)

from hookline import records
from hookline.config import HooklineConfig, parse_config
from ingest.http_protocol import HEAD_TIMEOUT_REASON, HEAD_TOO_LARGE_REASON
from ingest.metrics import UNKNOWN_SOURCE

HEAD_TIMEOUT_SECONDS = 0.5
MAX_HEAD_BYTES = 8 * 1024
WAIT_SECONDS = 10.0


def make_config() -> HooklineConfig:
    raw = repository_config(
        request_head_timeout_seconds=HEAD_TIMEOUT_SECONDS, max_request_head_bytes=MAX_HEAD_BYTES
    )
    raw["kafka"].update({"raw_topic": RAW_TOPIC, "rejected_topic": REJECTED_TOPIC})
    return parse_config(raw)


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[ThreadServer, RecordingProducer]]:
    producer = RecordingProducer()
    with ThreadServer(make_config(), producer) as server:
        yield server, producer


@pytest.fixture
def producer(running: tuple[ThreadServer, RecordingProducer]) -> RecordingProducer:
    """The server's producer, emptied of the records of earlier tests."""
    running[1].records.clear()
    return running[1]


@pytest.fixture
def server(running: tuple[ThreadServer, RecordingProducer]) -> ThreadServer:
    return running[0]


def send_partial_head(server: ThreadServer, head: bytes) -> bytes | None:
    """Send HEAD, which lacks its blank line, and return what the server sent before closing."""
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(head)
        return wait_closed(sock, WAIT_SECONDS)


def only_rejection(producer: RecordingProducer) -> records.Delivery:
    [record] = producer.wait_for(REJECTED_TOPIC, 1, WAIT_SECONDS)
    return records.Delivery.from_kafka(record.value, record.headers.items())


def test_head_timeout_recorded_with_source(server, producer):
    received = send_partial_head(server, b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")

    delivery = only_rejection(producer)
    assert received is not None
    assert received.startswith(b"HTTP/1.1 408 ")
    assert delivery.status == 408
    assert delivery.reason == HEAD_TIMEOUT_REASON
    assert delivery.source == "stripe"
    assert delivery.remote_addr == HOST
    assert delivery.body == b""
    assert delivery.receipt_id
    assert producer.on(RAW_TOPIC) == []


def test_head_timeout_before_path_unknown_source(server, producer):
    send_partial_head(server, b"POST /webh")

    delivery = only_rejection(producer)
    assert delivery.status == 408
    assert delivery.source == UNKNOWN_SOURCE


def test_head_too_large_recorded(server, producer):
    headers = [(f"X-Flood-{index}", "v" * 100) for index in range(200)]
    response = exchange(server.port, build_request("POST", "/webhooks/github", headers))

    delivery = only_rejection(producer)
    assert response is None or response.status == 431
    assert delivery.status == 431
    assert delivery.reason == HEAD_TOO_LARGE_REASON
    assert delivery.source == "github"
    assert delivery.remote_addr == HOST
    assert delivery.request_headers == {}


def test_long_path_unconfigured_source_unknown(server, producer):
    path = "/webhooks/" + "a" * (2 * MAX_HEAD_BYTES)
    exchange(server.port, build_request("POST", path))

    delivery = only_rejection(producer)
    assert delivery.status == 431
    assert delivery.source == UNKNOWN_SOURCE


def test_idle_connection_not_recorded(server, producer):
    received = send_partial_head(server, b"")

    assert received == b""
    assert producer.wait_for(REJECTED_TOPIC, 1, 2 * HEAD_TIMEOUT_SECONDS) == []


def test_head_rejections_counted_in_metrics(server, producer):
    send_partial_head(server, b"POST /webhooks/stripe HTTP/1.1\r\n")
    only_rejection(producer)

    metrics = exchange(server.port, build_request("GET", "/metrics"))

    assert metrics is not None
    text = metrics.body.decode()
    assert (
        f'hookline_ingest_rejections_total{{reason="{HEAD_TIMEOUT_REASON}",source="stripe"}}'
        in text
    )
    assert 'hookline_ingest_requests_total{source="stripe",status="408"}' in text
