"""Malformed and tricky requests against ingest on uvicorn: repeated headers, bytes that are
not UTF-8, gzip bodies and bombs, empty bodies.

Each test runs ingest in a thread (`ThreadServer`) with a recording producer, so
it can check what reached the raw and rejected topics.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import zlib
from collections.abc import Iterator

import httpx
import orjson
import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from test_hostile_server import ThreadServer, build_request, exchange, repository_config

from hookline import records
from hookline.config import HooklineConfig, parse_config
from ingest.samples import build_sample
from ingest.schemes import create_verifier
from ingest.signing import github_headers

SOURCES = tuple(repository_config()["sources"])
CONFIG_SOURCES = parse_config(repository_config()).sources
# Sources whose scheme reads at least one header, so a header can be repeated.
HEADER_SOURCES = tuple(
    name for name, source in CONFIG_SOURCES.items() if create_verifier(source).signed_headers
)
STRIPE_LIMIT = 64 * 1024


def make_config() -> HooklineConfig:
    raw = repository_config()
    raw["kafka"].update({"raw_topic": RAW_TOPIC, "rejected_topic": REJECTED_TOPIC})
    raw["sources"]["stripe"]["max_body_bytes"] = STRIPE_LIMIT
    raw["sources"]["github"]["max_body_bytes"] = STRIPE_LIMIT
    return parse_config(raw)


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[ThreadServer, RecordingProducer]]:
    producer = RecordingProducer()
    with ThreadServer(make_config(), producer) as server:
        yield server, producer


@pytest.fixture
def server(running: tuple[ThreadServer, RecordingProducer]) -> ThreadServer:
    return running[0]


@pytest.fixture
def producer(running: tuple[ThreadServer, RecordingProducer]) -> RecordingProducer:
    """The server's producer, emptied of the records of earlier tests."""
    server, producer = running
    server.settle()
    producer.records.clear()
    return producer


def post(
    server: ThreadServer, source: str, headers: list[tuple[str, str]], body: bytes
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/webhooks/{source}", content=body, headers=headers, timeout=30.0
    )


def github_request(body: bytes, **extra: str) -> list[tuple[str, str]]:
    secret = CONFIG_SOURCES["github"].secrets[0]
    return [
        ("Content-Type", "application/json"),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "d1"),
        *github_headers(secret, body).items(),
        *extra.items(),
    ]


# --- repeated headers -----------------------------------------------------------------------


@pytest.mark.parametrize("source", HEADER_SOURCES)
@pytest.mark.parametrize("order", ["valid-first", "junk-first"])
def test_repeated_signed_header_rejected(server, producer, source, order):
    headers, body = build_sample(CONFIG_SOURCES[source])
    verifier = create_verifier(CONFIG_SOURCES[source])
    pairs = list(headers.items())
    # Repeat the first header the scheme reads that the sample sends.
    name, value = next((n, v) for n, v in pairs if n.lower() in verifier.signed_headers)
    junk = (name, "0" * len(value))
    pairs = [*pairs, junk] if order == "valid-first" else [junk, *pairs]

    response = post(server, source, pairs, body)

    assert response.status_code == 400
    assert response.json()["error"] == "duplicate_header"
    assert name.lower() in response.json()["detail"]
    assert producer.on(RAW_TOPIC) == []
    [rejected] = producer.wait_for(REJECTED_TOPIC, 1)
    assert rejected.headers[records.REASON] == b"duplicate_header"


def test_repeated_unsigned_header_accepted(server, producer):
    headers, body = build_sample(CONFIG_SOURCES["stripe"])
    pairs = [*headers.items(), ("X-Forwarded-For", "192.0.2.1"), ("X-Forwarded-For", "192.0.2.2")]

    response = post(server, "stripe", pairs, body)

    assert response.status_code == 200
    [record] = producer.on(RAW_TOPIC)
    audited = orjson.loads(record.headers[records.REQUEST_HEADERS])
    assert audited["x-forwarded-for"] == "192.0.2.1, 192.0.2.2"


# --- bytes that are not UTF-8 -----------------------------------------------------------------


def test_signed_body_not_utf8_stored_byte_for_byte(server, producer):
    body = b'{"ref":"\xff\xfe\xc3\x28","zero":"\x00"}'
    response = post(server, "github", github_request(body), body)

    assert response.status_code == 200
    [record] = producer.on(RAW_TOPIC)
    assert record.value == body


def test_unsigned_body_not_utf8_rejected(server, producer):
    body = b"\xff" * 100 + b"\x80\x00"
    response = post(server, "github", [("Content-Type", "application/json")], body)

    assert response.status_code == 401
    [rejected] = producer.wait_for(REJECTED_TOPIC, 1)
    assert rejected.value == body


def test_header_value_not_utf8_recorded(server, producer):
    body = b'{"zen":"bytes"}'
    pairs = [(name, value) for name, value in github_request(body) if name != "X-GitHub-Delivery"]
    request = build_request(
        "POST", "/webhooks/github", [*pairs, ("X-GitHub-Delivery", b"id-\xff\xfe")], body
    )

    response = exchange(server.port, request)

    assert response is not None
    assert response.status == 200
    [record] = producer.on(RAW_TOPIC)
    # Header bytes are read as Latin-1, so each byte becomes one character.
    assert record.headers[records.EVENT_ID] == "id-\xff\xfe".encode()
    assert orjson.loads(record.headers[records.REQUEST_HEADERS])["x-github-delivery"] == "id-ÿþ"


def test_signature_header_not_utf8_rejected(server, producer):
    request = build_request(
        "POST",
        "/webhooks/github",
        [("Content-Type", "application/json"), ("X-Hub-Signature-256", b"sha256=\xff\xfe\x80")],
        b"{}",
    )

    response = exchange(server.port, request)

    assert response is not None
    assert response.status == 401
    assert response.json()["error"] == "no_matching_signature"
    assert producer.on(RAW_TOPIC) == []


# --- gzip -------------------------------------------------------------------------------------


def test_gzip_body_signed_when_decompressed_accepted(server, producer):
    body = b'{"compressed": true}'
    headers = [*github_request(body), ("Content-Encoding", "gzip")]

    response = post(server, "github", headers, gzip.compress(body))

    assert response.status_code == 200
    [record] = producer.on(RAW_TOPIC)
    assert record.value == body


def test_gzip_body_signed_over_compressed_bytes_rejected(server, producer):
    compressed = gzip.compress(b'{"compressed": true}')
    headers = [*github_request(compressed), ("Content-Encoding", "gzip")]

    response = post(server, "github", headers, compressed)

    assert response.status_code == 401
    assert producer.on(RAW_TOPIC) == []


@pytest.mark.parametrize(
    "bomb",
    [
        pytest.param(gzip.compress(bytes(64 * 1024 * 1024), 9), id="one-member-64-mib"),
        pytest.param(gzip.compress(bytes(1024 * 1024), 9) * 32, id="32-members-of-1-mib"),
    ],
)
def test_gzip_bomb_rejected_413(server, producer, bomb):
    headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]

    response = post(server, "github", headers, bomb)

    assert len(bomb) < STRIPE_LIMIT
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    [rejected] = producer.wait_for(REJECTED_TOPIC, 1)
    assert len(rejected.value) <= make_config().ingest.rejected_body_max_bytes


@pytest.mark.parametrize(
    ("body", "encoding", "status", "reason"),
    [
        pytest.param(b"not gzip at all", "gzip", 400, "invalid_content_encoding", id="not-gzip"),
        pytest.param(gzip.compress(b"{}")[:-6], "gzip", 400, "invalid_content_encoding", id="cut"),
        pytest.param(b"", "gzip", 400, "invalid_content_encoding", id="empty-gzip"),
        pytest.param(zlib.compress(b"{}"), "deflate", 415, "unsupported_content_encoding", id="zl"),
        pytest.param(b"{}", "br", 415, "unsupported_content_encoding", id="brotli"),
    ],
)
def test_bad_content_encoding_rejected(server, body, encoding, status, reason):
    headers = [*github_request(b"{}"), ("Content-Encoding", encoding)]

    response = post(server, "github", headers, body)

    assert response.status_code == status
    assert response.json()["error"] == reason


# --- empty bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("content_type", ["", "application/json"])
def test_empty_unsigned_body_rejected_4xx(server, producer, source, content_type):
    headers = [("Content-Type", content_type)] if content_type else []
    response = post(server, source, headers, b"")

    assert 400 <= response.status_code < 500
    assert producer.on(RAW_TOPIC) == []


def test_empty_signed_body_accepted(server, producer):
    secret = CONFIG_SOURCES["github"].secrets[0].encode()
    signature = hmac.new(secret, b"", hashlib.sha256).hexdigest()
    headers = [("X-Hub-Signature-256", f"sha256={signature}"), ("X-GitHub-Delivery", "e1")]

    response = post(server, "github", headers, b"")

    assert response.status_code == 200
    [record] = producer.on(RAW_TOPIC)
    assert record.value == b""
