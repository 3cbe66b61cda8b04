"""Every kind of rejection lands in webhook_rejections through the real path.

ingest (`hookline ingest`) and the audit sink (`hookline sink`) run as child
processes on the session's Kafka broker, with topics, tables, consumer group
and chDB folder of this test. Requests rejected with 400, 401, 403, 408, replayed copies (200),
413, 415, 429, and 408 or 431 for the request head must each become one row with status,
reason, source, client address and the body cut to `ingest.rejected_body_max_bytes`.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pipeline_support import Pipeline, wait_for_rows
from test_hostile_server import (
    HOST,
    build_request,
    free_port,
    read_response,
    repository_config,
    write_toml,
)

from hookline.broker import LocalBroker
from hookline.config import HooklineConfig
from ingest.samples import build_sample

pytestmark = pytest.mark.integration

REJECTED_BODY_MAX_BYTES = 64
BODY_LIMIT = 2048
MAX_HEAD_BYTES = 8 * 1024


def make_raw_config(broker: LocalBroker, folder: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:10]
    raw = repository_config(
        rejected_body_max_bytes=REJECTED_BODY_MAX_BYTES,
        body_read_timeout_seconds=1.0,
        request_head_timeout_seconds=1.0,
        max_request_head_bytes=MAX_HEAD_BYTES,
    )
    raw["kafka"].update(
        {
            "bootstrap_servers": broker.bootstrap_servers,
            "raw_topic": f"test.hostile.audit.raw.{suffix}",
            "rejected_topic": f"test.hostile.audit.rejected.{suffix}",
            "produce_timeout_seconds": 10.0,
        }
    )
    raw["audit"].update(
        {
            "dsn": f"chdb://{folder / 'clickhouse'}",
            "events_table": f"events_{suffix}",
            "rejections_table": f"rejections_{suffix}",
            "group_id": f"hostile-audit-{suffix}",
            "batch_max_seconds": 0.2,
            "query_port": free_port(),
        }
    )
    stripe = raw["sources"]["stripe"] | {"max_body_bytes": BODY_LIMIT}
    raw["sources"] = {
        "stripe": stripe,
        "fenced": stripe | {"allowed_networks": ["192.0.2.0/24"]},
        "limited": stripe | {"rate_limit_per_second": 0.001, "rate_limit_burst": 1},
    }
    return raw


@pytest.fixture
def pipeline(kafka_broker: LocalBroker, tmp_path) -> Iterator[Pipeline]:
    config_path = write_toml(make_raw_config(kafka_broker, tmp_path), tmp_path / "hookline.toml")
    running = Pipeline(config_path, tmp_path)
    try:
        running.start("sink")
        running.start("ingest")
        running.wait_ready()
        yield running
    finally:
        running.stop_all()


def post(pipeline: Pipeline, source: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    url = f"{pipeline.ingest_url}/webhooks/{source}"
    return httpx.post(url, content=body, headers=headers, timeout=30.0, trust_env=False)


def send_rejections(pipeline: Pipeline) -> dict[str, bytes]:
    """Send one request per rejection reason; return the body sent for each reason."""
    config: HooklineConfig = pipeline.config
    stripe = config.sources["stripe"]
    sent: dict[str, bytes] = {}

    headers, body = build_sample(stripe)
    forged = body.replace(b'"amount": 2000', b'"amount": 1')
    assert post(pipeline, "stripe", headers, forged).status_code == 401
    sent["no_matching_signature"] = forged

    fenced_headers, fenced_body = build_sample(config.sources["fenced"])
    assert post(pipeline, "fenced", fenced_headers, fenced_body).status_code == 403
    sent["address_not_allowed"] = b""

    large = b"{" + b" " * BODY_LIMIT + b"}"
    assert post(pipeline, "stripe", headers, large).status_code == 413
    sent["body_too_large"] = b""

    plain = headers | {"Content-Type": "text/plain"}
    assert post(pipeline, "stripe", plain, body).status_code == 415
    sent["unsupported_media_type"] = body

    limited_headers, limited_body = build_sample(config.sources["limited"])
    assert post(pipeline, "limited", limited_headers, limited_body).status_code == 200
    assert post(pipeline, "limited", limited_headers, limited_body).status_code == 429
    sent["rate_limited"] = b""

    replay_headers, replay_body = build_sample(stripe)
    assert post(pipeline, "stripe", replay_headers, replay_body).status_code == 200
    assert post(pipeline, "stripe", replay_headers, replay_body).status_code == 200
    sent["replayed_request"] = replay_body

    repeated = [*headers.items(), ("Stripe-Signature", headers["Stripe-Signature"])]
    request = build_request("POST", "/webhooks/stripe", repeated, body)
    with socket.create_connection((HOST, config.ingest.port), timeout=30.0) as sock:
        sock.sendall(request)
        response = read_response(sock)
    assert response is not None and response.status == 400
    sent["duplicate_header"] = b""

    slow = build_request("POST", "/webhooks/stripe", [*headers.items(), ("Content-Length", "100")])
    with socket.create_connection((HOST, config.ingest.port), timeout=30.0) as sock:
        sock.sendall(slow)
        response = read_response(sock)
    assert response is not None and response.status == 408
    sent["body_read_timeout"] = b""

    with socket.create_connection((HOST, config.ingest.port), timeout=30.0) as sock:
        sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")
        response = read_response(sock)
    assert response is not None and response.status == 408
    sent["request_head_timeout"] = b""

    flood = [(f"X-Flood-{index}", "v" * 100) for index in range(MAX_HEAD_BYTES // 50)]
    with socket.create_connection((HOST, config.ingest.port), timeout=30.0) as sock:
        sock.sendall(build_request("POST", "/webhooks/stripe", flood))
        response = read_response(sock)
    # The server may close before the client has read the 431.
    assert response is None or response.status == 431
    sent["request_head_too_large"] = b""
    return sent


EXPECTED = {
    "no_matching_signature": (401, "stripe"),
    "address_not_allowed": (403, "fenced"),
    "body_too_large": (413, "stripe"),
    "unsupported_media_type": (415, "stripe"),
    "rate_limited": (429, "limited"),
    "replayed_request": (200, "stripe"),
    "duplicate_header": (400, "stripe"),
    "body_read_timeout": (408, "stripe"),
    "request_head_timeout": (408, "stripe"),
    "request_head_too_large": (431, "stripe"),
}


def test_every_rejection_lands_in_audit_table(pipeline):
    config = pipeline.config
    started = time.monotonic()
    sent = send_rejections(pipeline)

    sql = (
        "SELECT reason, status, source, remote_addr, hex(body), length(body) "
        f"FROM {config.audit.rejections_table} ORDER BY received_at"
    )
    rows = wait_for_rows(config, sql, len(EXPECTED), timeout=90.0)

    by_reason = {row[0]: row for row in rows}
    assert sorted(by_reason) == sorted(EXPECTED), f"rows after {time.monotonic() - started:.0f} s"
    assert len(rows) == len(EXPECTED)
    for reason, (status, source) in EXPECTED.items():
        _, stored_status, stored_source, remote_addr, body_hex, length = by_reason[reason]
        expected_body = sent[reason][:REJECTED_BODY_MAX_BYTES]
        assert stored_status == status, reason
        assert stored_source == source, reason
        assert remote_addr == "127.0.0.1", reason
        assert bytes.fromhex(body_hex) == expected_body, reason
        assert length <= REJECTED_BODY_MAX_BYTES, reason
    forged_length = by_reason["no_matching_signature"][5]
    assert forged_length == REJECTED_BODY_MAX_BYTES
