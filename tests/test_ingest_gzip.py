"""Content-Encoding: gzip bodies: decompressed before verification, within the body limit."""

from __future__ import annotations

import gzip
import random
import tracemalloc
from collections.abc import Iterator

import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from litestar import Litestar
from litestar.testing import TestClient

from hookline import records
from hookline.config import HooklineConfig, IngestConfig, KafkaConfig, SourceConfig
from ingest.app import create_app
from ingest.body import (
    BodyTooLargeError,
    InvalidContentEncodingError,
    UnsupportedContentEncodingError,
    decode_body,
    gunzip,
    parse_content_encoding,
)
from ingest.signing import shopify_headers

SECRET = "test-only-gzip-shopify-secret"
LIMIT = 4096
REJECTED_BODY_MAX = 64
BODY = b'{"id":1001,"email":"gzip@example.com","line_items":[' + b'{"qty":1},' * 50 + b"{}]}"


def make_config() -> HooklineConfig:
    return HooklineConfig(
        kafka=KafkaConfig(raw_topic=RAW_TOPIC, rejected_topic=REJECTED_TOPIC),
        ingest=IngestConfig(rejected_body_max_bytes=REJECTED_BODY_MAX),
        sources={
            "shop": SourceConfig(
                name="shop",
                scheme="shopify",
                secrets=(SECRET,),
                event_id="header:X-Shopify-Webhook-Id",
                max_body_bytes=LIMIT,
            )
        },
    )


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def client(producer: RecordingProducer) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(make_config(), producer=producer)) as test_client:
        yield test_client


def gzip_request(body: bytes, encoding: str = "gzip") -> dict[str, str]:
    # Shopify signs the uncompressed body.
    return {
        "Content-Type": "application/json",
        "Content-Encoding": encoding,
        "X-Shopify-Webhook-Id": "gzip-delivery-1",
        **shopify_headers(SECRET, body),
    }


def test_gzip_body_verified_after_decompression(client, producer):
    compressed = gzip.compress(BODY)

    response = client.post("/webhooks/shop", content=compressed, headers=gzip_request(BODY))

    assert response.status_code == 200
    [record] = producer.on(RAW_TOPIC)
    assert record.value == BODY
    assert record.key == b"shop:gzip-delivery-1"


@pytest.mark.parametrize("encoding", ["x-gzip", "GZIP", "gzip, identity", "identity, gzip"])
def test_gzip_coding_names_accepted(client, producer, encoding):
    response = client.post(
        "/webhooks/shop", content=gzip.compress(BODY), headers=gzip_request(BODY, encoding)
    )

    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].value == BODY


def test_gzip_signature_over_compressed_bytes_rejected(client, producer):
    compressed = gzip.compress(BODY)
    headers = gzip_request(BODY) | shopify_headers(SECRET, compressed)

    response = client.post("/webhooks/shop", content=compressed, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "no_matching_signature"
    assert producer.on(RAW_TOPIC) == []


def test_gzip_multiple_members_joined(client, producer):
    compressed = gzip.compress(BODY[:100]) + gzip.compress(BODY[100:])

    response = client.post("/webhooks/shop", content=compressed, headers=gzip_request(BODY))

    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].value == BODY


def test_gzip_chunked_body_accepted(client, producer):
    compressed = gzip.compress(BODY)

    def chunks() -> Iterator[bytes]:
        yield compressed[:10]
        yield compressed[10:]

    response = client.post("/webhooks/shop", content=chunks(), headers=gzip_request(BODY))

    assert response.request.headers.get("content-length") is None
    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].value == BODY


def sized_body(size: int) -> bytes:
    prefix, suffix = b'{"pad":"', b'"}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        pytest.param(LIMIT, 200, id="decompressed-at-limit"),
        pytest.param(LIMIT + 1, 413, id="decompressed-one-byte-over"),
    ],
)
def test_gzip_limit_applies_to_decompressed_size(client, size, expected):
    body = sized_body(size)
    compressed = gzip.compress(body)

    response = client.post("/webhooks/shop", content=compressed, headers=gzip_request(body))

    assert len(compressed) < LIMIT
    assert response.status_code == expected


def test_gzip_bomb_413_and_recorded(client, producer):
    # 3 MiB of zeros compress to about 3 KiB, which passes the 4 KiB read limit.
    bomb = gzip.compress(b"\0" * (3 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < LIMIT

    response = client.post("/webhooks/shop", content=bomb, headers=gzip_request(b"x"))

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "decompressed" in response.json()["detail"]
    assert producer.on(RAW_TOPIC) == []
    [rejected] = producer.wait_for(REJECTED_TOPIC, 1)
    assert rejected.headers[records.STATUS] == b"413"
    assert rejected.value == b"\0" * REJECTED_BODY_MAX


def test_gzip_compressed_body_over_limit_413(client):
    body = random.Random(7).randbytes(2 * LIMIT)  # random bytes do not compress
    compressed = gzip.compress(body)
    assert len(compressed) > LIMIT

    response = client.post("/webhooks/shop", content=compressed, headers=gzip_request(body))

    assert response.status_code == 413


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"definitely not gzip", id="not-gzip"),
        pytest.param(gzip.compress(BODY)[:-6], id="truncated"),
        pytest.param(gzip.compress(BODY) + b"trailing", id="trailing-garbage"),
        pytest.param(b"", id="empty"),
    ],
)
def test_gzip_corrupt_body_400_and_recorded(client, producer, content):
    response = client.post("/webhooks/shop", content=content, headers=gzip_request(BODY))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_content_encoding"
    assert producer.on(RAW_TOPIC) == []
    [rejected] = producer.wait_for(REJECTED_TOPIC, 1)
    assert rejected.headers[records.REASON] == b"invalid_content_encoding"
    assert rejected.value == content[:REJECTED_BODY_MAX]


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br"])
def test_gzip_other_codings_415(client, producer, encoding):
    response = client.post("/webhooks/shop", content=BODY, headers=gzip_request(BODY, encoding))

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_content_encoding"
    assert producer.on(RAW_TOPIC) == []


def test_gzip_identity_body_unchanged(client, producer):
    response = client.post("/webhooks/shop", content=BODY, headers=gzip_request(BODY, "identity"))

    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].value == BODY


def test_gunzip_bomb_memory_stays_near_limit():
    bomb = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)
    limit = 1024 * 1024

    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLargeError) as caught:
            gunzip(bomb, limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(caught.value.head) == limit
    # Inflating whole would take 256 MiB, but the peak should be a few times the limit.
    assert peak < 8 * limit


def test_gunzip_empty_member():
    assert gunzip(gzip.compress(b""), 10) == b""


def test_decode_body_nested_gzip():
    twice = gzip.compress(gzip.compress(BODY))

    assert decode_body(twice, "gzip, gzip", LIMIT) == BODY


def test_decode_body_unencoded_unchanged():
    assert decode_body(b"\xff\x00raw", None, 4) == b"\xff\x00raw"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, [], id="absent"),
        pytest.param("", [], id="empty"),
        pytest.param("identity", [], id="identity"),
        pytest.param(" GZip ", ["gzip"], id="case-and-spaces"),
        pytest.param("gzip,x-gzip", ["gzip", "x-gzip"], id="two"),
    ],
)
def test_parse_content_encoding(value, expected):
    assert parse_content_encoding(value) == expected


def test_parse_content_encoding_unsupported_names_coding():
    with pytest.raises(UnsupportedContentEncodingError, match="'br'"):
        parse_content_encoding("gzip, br")


def test_gunzip_corrupt_raises():
    with pytest.raises(InvalidContentEncodingError):
        gunzip(b"\x1f\x8b\x08\x00garbage", 100)
