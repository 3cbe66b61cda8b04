"""The ingest application through Litestar's test client, with a test double for Kafka."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from hookline import records
from hookline.broker import find_free_ports
from hookline.config import HooklineConfig, IngestConfig, KafkaConfig, SourceConfig, load_config
from hookline.errors import BrokerUnavailableError
from ingest.app import create_app
from ingest.producer import KafkaRecordProducer
from ingest.signing import github_headers, standard_webhooks_headers, stripe_headers

STRIPE_SECRET = "whsec_test_only_app_stripe_secret"
GITHUB_SECRET = "test-only-app-github-secret"
STANDARD_SECRET = "whsec_dGVzdC1vbmx5LWFwcC1zdGFuZGFyZC13ZWJob29rcw=="
RAW_TOPIC = "test.raw"
REJECTED_TOPIC = "test.rejected"
STRIPE_LIMIT = 4096
REJECTED_BODY_MAX = 64


@dataclass
class Record:
    topic: str
    value: bytes
    key: bytes
    headers: dict[str, bytes]


@dataclass
class FakeProducer:
    """Test double of RecordProducer that keeps records in memory."""

    connected: bool = True
    hang: bool = False
    error: Exception | None = None
    records: list[Record] = field(default_factory=list)
    started: bool = False
    stopped: bool = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def check_ready(self) -> bool:
        return self.connected

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        # Polled rather than awaited on an event, so a test can release it
        # from its own thread.
        while self.hang:
            await asyncio.sleep(0.01)
        if self.error is not None:
            raise self.error
        self.records.append(Record(topic, value, key, dict(headers)))
        return object()

    def on(self, topic: str) -> list[Record]:
        return [record for record in self.records if record.topic == topic]


def make_config(**kafka: Any) -> HooklineConfig:
    return HooklineConfig(
        kafka=KafkaConfig(
            raw_topic=RAW_TOPIC,
            rejected_topic=REJECTED_TOPIC,
            **({"produce_timeout_seconds": 0.2} | kafka),
        ),
        ingest=IngestConfig(retry_after_seconds=7, rejected_body_max_bytes=REJECTED_BODY_MAX),
        sources={
            "stripe": SourceConfig(
                name="stripe",
                scheme="stripe",
                secrets=(STRIPE_SECRET,),
                event_id="json:/id",
                event_type="json:/type",
                max_body_bytes=STRIPE_LIMIT,
            ),
            "github": SourceConfig(
                name="github",
                scheme="github",
                secrets=(GITHUB_SECRET,),
                event_id="header:X-GitHub-Delivery",
                event_type="header:X-GitHub-Event",
                max_body_bytes=25 * 1024 * 1024,
                content_types=("application/json", "application/x-www-form-urlencoded"),
            ),
            "standard": SourceConfig(
                name="standard",
                scheme="standard-webhooks",
                secrets=(STANDARD_SECRET,),
                event_id="header:webhook-id",
                event_type="json:/type",
            ),
        },
    )


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def client(producer: FakeProducer) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(make_config(), producer=producer)) as test_client:
        yield test_client


def stripe_event(event_id: str = "evt_app_1", extra: str = "") -> bytes:
    return (
        f'{{\n  "id": "{event_id}",\n  "object": "event",\n'
        f'  "type": "payment_intent.succeeded"{extra}\n}}\n'
    ).encode()


def stripe_request(
    body: bytes, *, secret: str = STRIPE_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json; charset=utf-8",
        **stripe_headers(secret, body, timestamp),
    }


def wait_for_records(producer: FakeProducer, topic: str, count: int) -> list[Record]:
    # Rejection records are produced by a background task in the client's thread.
    deadline = time.monotonic() + 5.0
    while len(producer.on(topic)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return producer.on(topic)


def test_app_accepted_request_returns_receipt(client, producer):
    body = stripe_event()

    response = client.post("/webhooks/stripe", content=body, headers=stripe_request(body))

    assert response.status_code == 200
    receipt_id = response.json()["receipt_id"]
    assert uuid.UUID(receipt_id).version == 7
    assert len(producer.on(RAW_TOPIC)) == 1
    assert producer.on(RAW_TOPIC)[0].headers[records.RECEIPT_ID] == receipt_id.encode()


def test_app_raw_record_key_value_headers(client, producer):
    body = stripe_event("evt_app_record")
    headers = stripe_request(body) | {"Authorization": "Bearer test-only-token", "X-Extra": "1"}

    response = client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 200
    [record] = producer.on(RAW_TOPIC)
    assert record.value == body
    assert record.key == b"stripe:evt_app_record"
    assert record.headers[records.SOURCE] == b"stripe"
    assert record.headers[records.EVENT_ID] == b"evt_app_record"
    assert record.headers[records.EVENT_TYPE] == b"payment_intent.succeeded"
    assert record.headers[records.CONTENT_TYPE] == b"application/json; charset=utf-8"
    assert record.headers[records.REMOTE_ADDR] == b"testclient"
    assert records.STATUS not in record.headers
    received_at = records.parse_time(record.headers[records.RECEIVED_AT].decode())
    assert abs(received_at.timestamp() - time.time()) < 60
    audited = orjson.loads(record.headers[records.REQUEST_HEADERS])
    assert audited["stripe-signature"] == records.REDACTED
    assert audited["authorization"] == records.REDACTED
    assert audited["x-extra"] == "1"
    signature = headers["Stripe-Signature"].split("v1=")[1]
    for value in record.headers.values():
        assert signature.encode() not in value
        assert b"test-only-token" not in value


def test_app_record_round_trips_as_delivery(client, producer):
    body = stripe_event("evt_app_roundtrip")

    response = client.post("/webhooks/stripe", content=body, headers=stripe_request(body))

    [record] = producer.on(RAW_TOPIC)
    delivery = records.Delivery.from_kafka(record.value, record.headers.items())
    assert delivery.receipt_id == response.json()["receipt_id"]
    assert delivery.body == body
    assert delivery.event_id == "evt_app_roundtrip"


def test_app_non_utf8_body_stored_byte_for_byte(client, producer):
    body = b"\xff\xfe{\x80 not utf-8 \xc3"
    headers = {
        "Content-Type": "application/json",
        **stripe_headers(STRIPE_SECRET, body, int(time.time())),
    }

    response = client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 200
    [record] = producer.on(RAW_TOPIC)
    assert record.value == body
    assert records.EVENT_ID not in record.headers
    receipt_id = response.json()["receipt_id"]
    assert record.key == f"stripe:{receipt_id}".encode()


def test_app_non_utf8_forgery_rejected_with_401(client, producer):
    body = b"\xff\xfe\xfd"
    # Header bytes outside ASCII arrive decoded as Latin-1.
    headers = {"Content-Type": "application/json", "Stripe-Signature": b"t=1,v1=\xff\xfe"}

    response = client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "no_matching_signature"


def test_app_unknown_source_404(client, producer):
    body = stripe_event()

    response = client.post("/webhooks/nope", content=body, headers=stripe_request(body))

    assert response.status_code == 404
    assert response.json()["error"] == "unknown_source"
    time.sleep(0.05)
    assert producer.records == []


def test_app_oversized_content_length_413(client, producer):
    body = stripe_event(extra=',\n  "pad": "' + "x" * STRIPE_LIMIT + '"')

    response = client.post("/webhooks/stripe", content=body, headers=stripe_request(body))

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert producer.on(RAW_TOPIC) == []
    [rejected] = wait_for_records(producer, REJECTED_TOPIC, 1)
    assert rejected.headers[records.STATUS] == b"413"
    assert rejected.headers[records.REASON] == b"body_too_large"
    # Content-Length announced the size, so nothing of the body was read.
    assert rejected.value == b""


def test_app_oversized_chunked_body_413(client, producer):
    body = stripe_event(extra=',\n  "pad": "' + "x" * STRIPE_LIMIT + '"')

    def chunks() -> Iterator[bytes]:
        yield body[:1000]
        yield body[1000:]

    response = client.post("/webhooks/stripe", content=chunks(), headers=stripe_request(body))

    assert response.request.headers.get("content-length") is None
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert producer.on(RAW_TOPIC) == []


def body_of_size(size: int) -> bytes:
    prefix, suffix = b'{"id":"evt_app_sized","type":"t","pad":"', b'"}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        pytest.param(STRIPE_LIMIT, 200, id="at-limit"),
        pytest.param(STRIPE_LIMIT + 1, 413, id="one-byte-over"),
    ],
)
def test_app_chunked_body_limit_boundary(client, producer, size, expected):
    body = body_of_size(size)

    def chunks() -> Iterator[bytes]:
        yield body[:100]
        yield body[100:]

    response = client.post("/webhooks/stripe", content=chunks(), headers=stripe_request(body))

    assert len(body) == size
    assert response.status_code == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        pytest.param(STRIPE_LIMIT, 200, id="at-limit"),
        pytest.param(STRIPE_LIMIT + 1, 413, id="one-byte-over"),
    ],
)
def test_app_content_length_limit_boundary(client, producer, size, expected):
    body = body_of_size(size)

    response = client.post("/webhooks/stripe", content=body, headers=stripe_request(body))

    assert response.request.headers["content-length"] == str(size)
    assert response.status_code == expected


async def call_asgi(
    app: Litestar, headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """Send one POST to /webhooks/stripe straight through ASGI.

    Returns the messages the application sent and how many it received.
    """
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return messages[received - 1]

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/stripe",
        "raw_path": b"/webhooks/stripe",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return sent, received


async def test_app_streaming_stops_at_limit(producer):
    app = create_app(make_config(), producer=producer)
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    messages = [{"type": "http.request", "body": b"x" * 1000, "more_body": True}] * 50

    sent, received = await call_asgi(app, headers, messages)

    # The fifth 1000-byte chunk passes the 4096-byte limit, and nothing after it is read.
    assert received == 5
    assert sent[0]["status"] == 413


async def test_app_invalid_content_length_400(producer):
    app = create_app(make_config(), producer=producer)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"-5")]
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    sent, received = await call_asgi(app, headers, messages)

    assert sent[0]["status"] == 400
    assert b"invalid_content_length" in sent[1]["body"]
    assert received == 0


async def test_app_client_disconnect_mid_body(producer):
    app = create_app(make_config(), producer=producer)
    headers = [(b"content-type", b"application/json")]
    messages = [
        {"type": "http.request", "body": b'{"id":', "more_body": True},
        {"type": "http.disconnect"},
    ]

    sent, _ = await call_asgi(app, headers, messages)

    assert sent[0]["status"] == 400
    assert producer.records == []


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        pytest.param("application/json", 200, id="exact"),
        pytest.param("application/json; charset=utf-8", 200, id="with-charset"),
        pytest.param("Application/JSON ; charset=UTF-8", 200, id="mixed-case"),
        pytest.param("text/plain", 415, id="text-plain"),
        pytest.param("application/x-www-form-urlencoded", 415, id="form-not-accepted"),
        pytest.param("application/jsonx", 415, id="similar-name"),
    ],
)
def test_app_content_type_check(client, content_type, expected):
    body = stripe_event()
    headers = stripe_request(body) | {"Content-Type": content_type}

    response = client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == expected
    if expected == 415:
        assert response.json()["error"] == "unsupported_media_type"


def test_app_missing_content_type_with_body_415(client):
    body = stripe_event()
    headers = stripe_headers(STRIPE_SECRET, body, int(time.time()))

    response = client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 415


def test_app_empty_body_without_content_type_accepted(client, producer):
    # Documented case B21: a signed empty body with no Content-Type at all.
    headers = standard_webhooks_headers(STANDARD_SECRET, b"", int(time.time()), "msg_app_empty")

    response = client.post("/webhooks/standard", content=b"", headers=headers)

    assert response.status_code == 200
    [record] = producer.on(RAW_TOPIC)
    assert record.value == b""
    assert record.key == b"standard:msg_app_empty"
    assert records.EVENT_TYPE not in record.headers


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        pytest.param(lambda h: h.pop("Stripe-Signature"), "missing_header", id="missing"),
        pytest.param(
            lambda h: h.update({"Stripe-Signature": "v1=abc"}), "malformed_header", id="malformed"
        ),
        pytest.param(
            lambda h: h.update(stripe_headers("whsec_wrong", b"x", int(time.time()))),
            "no_matching_signature",
            id="wrong",
        ),
        pytest.param(
            lambda h: h.update(
                stripe_headers(STRIPE_SECRET, stripe_event(), int(time.time()) - 3600)
            ),
            "timestamp_outside_tolerance",
            id="too-old",
        ),
        pytest.param(
            lambda h: h.update(
                stripe_headers(STRIPE_SECRET, stripe_event(), int(time.time()) + 3600)
            ),
            "timestamp_outside_tolerance",
            id="too-far-ahead",
        ),
    ],
)
def test_app_signature_failure_401(client, producer, mutate, reason):
    body = stripe_event()
    headers = stripe_request(body)
    mutate(headers)

    response = client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == reason
    assert set(response.json()) == {"error", "detail"}
    assert STRIPE_SECRET not in response.text
    assert producer.on(RAW_TOPIC) == []


def test_app_rejection_recorded_truncated(client, producer):
    body = stripe_event(extra=',\n  "pad": "' + "y" * 200 + '"')
    headers = stripe_request(body, secret="whsec_forger") | {"Cookie": "session=test-only"}

    response = client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 401
    [rejected] = wait_for_records(producer, REJECTED_TOPIC, 1)
    assert rejected.value == body[:REJECTED_BODY_MAX]
    assert rejected.key == b"stripe:evt_app_1"
    assert rejected.headers[records.STATUS] == b"401"
    assert rejected.headers[records.REASON] == b"no_matching_signature"
    assert rejected.headers[records.EVENT_ID] == b"evt_app_1"
    audited = orjson.loads(rejected.headers[records.REQUEST_HEADERS])
    assert audited["stripe-signature"] == records.REDACTED
    assert audited["cookie"] == records.REDACTED
    assert producer.on(RAW_TOPIC) == []


def test_app_unsupported_media_type_recorded(client, producer):
    body = stripe_event()
    headers = stripe_request(body) | {"Content-Type": "text/xml"}

    response = client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 415
    [rejected] = wait_for_records(producer, REJECTED_TOPIC, 1)
    assert rejected.headers[records.STATUS] == b"415"
    assert rejected.headers[records.REASON] == b"unsupported_media_type"


@pytest.mark.parametrize(
    ("content_type", "size", "signed", "expected"),
    [
        pytest.param("text/plain", STRIPE_LIMIT + 1, False, 413, id="size-before-type"),
        pytest.param("text/plain", 100, False, 415, id="type-before-signature"),
        pytest.param("application/json", 100, False, 401, id="signature-last"),
    ],
)
def test_app_status_order(client, content_type, size, signed, expected):
    body = b"z" * size
    headers = {"Content-Type": content_type, "Stripe-Signature": "t=1,v1=00"}

    response = client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == expected


def test_app_rejection_failure_does_not_delay_response(producer):
    producer.hang = True
    with TestClient(
        create_app(make_config(produce_timeout_seconds=5.0), producer=producer)
    ) as client:
        started = time.monotonic()
        response = client.post(
            "/webhooks/stripe", content=b"{}", headers={"Content-Type": "application/json"}
        )
        elapsed = time.monotonic() - started
        producer.hang = False

    assert response.status_code == 401
    assert elapsed < 1.0


def test_app_rejection_dropped_when_disconnected(producer):
    producer.connected = False
    with TestClient(create_app(make_config(), producer=producer)) as client:
        response = client.post(
            "/webhooks/stripe", content=b"{}", headers={"Content-Type": "application/json"}
        )
        metrics = client.get("/metrics").text

    assert response.status_code == 401
    assert producer.records == []
    assert "hookline_ingest_rejected_records_dropped_total 1.0" in metrics


def test_app_produce_timeout_503(producer):
    producer.hang = True
    with TestClient(create_app(make_config(), producer=producer)) as client:
        body = stripe_event()
        response = client.post("/webhooks/stripe", content=body, headers=stripe_request(body))

    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"] == "broker_unavailable"


def test_app_broker_error_503(producer):
    producer.error = BrokerUnavailableError(RAW_TOPIC, "NotLeaderForPartitionError")
    with TestClient(create_app(make_config(), producer=producer)) as client:
        body = stripe_event()
        response = client.post("/webhooks/stripe", content=body, headers=stripe_request(body))

    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"


def test_app_without_broker_503_and_not_ready():
    # A real producer pointed at a loopback port where nothing listens.
    (port,) = find_free_ports(1)
    config = make_config(bootstrap_servers=f"127.0.0.1:{port}", produce_timeout_seconds=1.0)
    producer = KafkaRecordProducer(config.kafka, reconnect_min_seconds=0.1)
    with TestClient(create_app(config, producer=producer)) as client:
        body = stripe_event()
        started = time.monotonic()
        response = client.post("/webhooks/stripe", content=body, headers=stripe_request(body))
        elapsed = time.monotonic() - started
        ready = client.get("/readyz")
        health = client.get("/healthz")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert elapsed < 1.0  # not connected: no wait for the produce timeout
    assert ready.status_code == 503
    assert health.status_code == 200
    assert producer.connected is False


def test_app_lifespan_starts_and_stops_producer(producer):
    with TestClient(create_app(make_config(), producer=producer)):
        assert producer.started is True
        assert producer.stopped is False

    assert producer.stopped is True


@pytest.mark.parametrize(("connected", "expected"), [(True, 200), (False, 503)])
def test_app_readiness_follows_producer(producer, connected, expected):
    producer.connected = connected
    with TestClient(create_app(make_config(), producer=producer)) as client:
        response = client.get("/readyz")

    assert response.status_code == expected


def test_app_health_always_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_app_metrics_count_requests(client):
    body = stripe_event()
    client.post("/webhooks/stripe", content=body, headers=stripe_request(body))
    client.post("/webhooks/stripe", content=body, headers={"Content-Type": "application/json"})
    client.post("/webhooks/elsewhere", content=body)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'hookline_ingest_requests_total{source="stripe",status="200"} 1.0' in text
    assert 'hookline_ingest_requests_total{source="stripe",status="401"} 1.0' in text
    assert 'hookline_ingest_requests_total{source="_unknown",status="404"} 1.0' in text
    assert 'hookline_ingest_produce_seconds_count{outcome="acked"} 1.0' in text
    assert "hookline_ingest_producer_connected 1.0" in text
    assert "elsewhere" not in text


def test_app_openapi_document(client):
    document = client.get("/schema/openapi.json")
    page = client.get("/schema")

    assert document.status_code == 200
    assert page.status_code == 200
    operation = document.json()["paths"]["/webhooks/{source}"]["post"]
    assert set(operation["responses"]) >= {"200", "401", "404", "413", "415", "503"}
    assert "/readyz" in document.json()["paths"]


# Documented cases through the whole application, with their headers, bodies
# and secrets copied from the case files. Published signatures are accepted
# only within the tolerance, so GitHub cases (no timestamp) come from there.

B18_BODY = (
    b"payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%2C%22hook_id%22%3A12345678%2C"
    b"%22hook%22%3A%7B%22type%22%3A%22Repository%22%2C%22config%22%3A%7B%22content_type"
    b"%22%3A%22form%22%7D%7D%2C%22repository%22%3A%7B%22full_name%22%3A%22corpus%2Fdemo%22%7D%7D"
)


def large_push_body(files: int = 5400) -> bytes:
    added = ",".join(f'"src/module_{i // 50:04d}/file_{i:04d}.py"' for i in range(files))
    return (
        '{"ref":"refs/heads/main","before":"' + "1" * 40 + '","after":"' + "2" * 40 + '",'
        '"repository":{"full_name":"corpus/monorepo"},"commits":[{"id":"' + "3" * 40 + '",'
        '"message":"vendor all the things","added":[' + added + '],"removed":[],"modified":[]}],'
        '"head_commit":{"id":"' + "3" * 40 + '"}}'
    ).encode()


def corpus_github_app(producer: FakeProducer, secret: str, max_body_bytes: int) -> Litestar:
    config = make_config()
    github = SourceConfig(
        name="github",
        scheme="github",
        secrets=(secret,),
        event_id="header:X-GitHub-Delivery",
        event_type="header:X-GitHub-Event",
        max_body_bytes=max_body_bytes,
        content_types=("application/json", "application/x-www-form-urlencoded"),
    )
    config = HooklineConfig(kafka=config.kafka, ingest=config.ingest, sources={"github": github})
    return create_app(config, producer=producer)


def test_app_docs_example_non_json_body_accepted(producer):
    # Case A01: the body is not JSON; ingest verifies it and does not parse it.
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "00000000-0000-4000-8000-000000000a01",
        "X-Hub-Signature-256": (
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        ),
    }
    app = corpus_github_app(producer, "It's a Secret to Everybody", 1024 * 1024)
    with TestClient(app) as client:
        response = client.post("/webhooks/github", content=b"Hello, World!", headers=headers)

    assert response.status_code == 200
    [record] = producer.on(RAW_TOPIC)
    assert record.value == b"Hello, World!"
    assert record.key == b"github:00000000-0000-4000-8000-000000000a01"
    assert record.headers[records.EVENT_TYPE] == b"ping"


def test_app_form_urlencoded_payload_accepted(producer):
    # Case B18: form-encoded delivery, verified over the raw form bytes.
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "00000000-0000-4000-8000-0000000000b8",
        "X-Hub-Signature-256": (
            "sha256=ab2508b54b1687cf1cc4d8c265ea67574139b4650b3f4fdf4b78825d16cacffa"
        ),
    }
    app = corpus_github_app(producer, "corpus-fake-github-webhook-secret", 1024 * 1024)
    with TestClient(app) as client:
        response = client.post("/webhooks/github", content=B18_BODY, headers=headers)

    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].value == B18_BODY


B17_HEADERS = {
    "Content-Type": "application/json",
    "X-GitHub-Event": "push",
    "X-GitHub-Delivery": "00000000-0000-4000-8000-0000000000b7",
    "X-Hub-Signature-256": (
        "sha256=779410626d23dd402d47310bf5d5879041b948311e7569514435693e1b7f78d9"
    ),
}


def test_app_large_push_within_example_limit(producer):
    # Case B17: a 167,770-byte push must pass the limit of the example config.
    example = load_config(Path(__file__).resolve().parents[1] / "config" / "hookline.toml")
    limit = example.sources["github"].max_body_bytes
    body = large_push_body()
    app = corpus_github_app(producer, "corpus-fake-github-webhook-secret", limit)
    with TestClient(app) as client:
        response = client.post("/webhooks/github", content=body, headers=B17_HEADERS)

    assert len(body) == 167770
    assert hashlib.sha256(body).hexdigest() == (
        "15bef01644cdc42c51b2303201454e3cb2e0e36ccafe4ef4958b9a430478a083"
    )
    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].value == body


def test_app_large_push_over_small_limit_413(producer):
    # The failure the case reports: a 100 KB limit loses the event.
    app = corpus_github_app(producer, "corpus-fake-github-webhook-secret", 100 * 1024)
    with TestClient(app) as client:
        response = client.post("/webhooks/github", content=large_push_body(), headers=B17_HEADERS)

    assert response.status_code == 413


def test_app_github_signed_by_helper_accepted(client, producer):
    body = b'{"zen":"Approachable is better than simple."}'
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "delivery-app-1",
        **github_headers(GITHUB_SECRET, body),
    }
    signature = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()

    response = client.post("/webhooks/github", content=body, headers=headers)

    assert headers["X-Hub-Signature-256"] == f"sha256={signature}"
    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].key == b"github:delivery-app-1"
