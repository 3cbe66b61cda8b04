"""Property-based tests of ingest's HTTP surface with hypothesis, over raw sockets.

ingest runs as a child process (`ServerProcess`) with every source of
config/hookline.toml and a producer that acknowledges at once, so no 503 is
designed to happen. Generated requests vary method, path, headers (names of
every scheme's headers, bytes that are not UTF-8, repeats), content type,
content coding (gzip, bombs, corrupt data) and body framing. Properties:

- no response is a 5xx;
- no POST to /webhooks/... gets a 2xx, because nothing generated carries a
  valid signature, and nothing reaches the raw topic;
- the server stays up, logs no unhandled exception, and its resident memory
  grows by less than a generous bound (the numbers are printed).

HOOKLINE_FUZZ_EXAMPLES sets the number of examples per test (default 150).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile_server import (
    ServerProcess,
    build_request,
    exchange,
    repository_config,
)

from hookline.config import parse_config
from ingest.schemes import create_verifier

EXAMPLES = int(os.environ.get("HOOKLINE_FUZZ_EXAMPLES", "150"))
# Generous bound on the server's memory growth over a module's examples, in KiB.
RSS_GROWTH_BOUND_KIB = 200 * 1024

RAW_CONFIG = repository_config(request_head_timeout_seconds=2.0, body_read_timeout_seconds=2.0)
RAW_CONFIG["sources"]["limited"] = RAW_CONFIG["sources"]["stripe"] | {
    "rate_limit_per_second": 5.0,
    "rate_limit_burst": 2,
}
CONFIG = parse_config(RAW_CONFIG)
SOURCES = sorted(CONFIG.sources)
SCHEME_HEADERS = sorted(
    {name for source in CONFIG.sources.values() for name in create_verifier(source).signed_headers}
)

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("fuzz-http")
    with ServerProcess(RAW_CONFIG, folder) as process:
        # Warm up, so that memory of first use is in the baseline.
        for _ in range(20):
            exchange(process.port, build_request("POST", "/webhooks/stripe", body=b"{}"))
        process.baseline_rss_kib = process.rss_kib()  # type: ignore[attr-defined]
        yield process

        rss = process.rss_kib()
        growth = rss - process.baseline_rss_kib  # type: ignore[attr-defined]
        print(f"\nfuzz server RSS: {process.baseline_rss_kib} KiB -> {rss} KiB")  # type: ignore[attr-defined]
        assert process.is_healthy(), process.log_text()
        assert growth < RSS_GROWTH_BOUND_KIB
        assert process.metric('hookline_ingest_produce_seconds_count{outcome="acked"}') == 0
        log = process.log_text()
        assert "Traceback" not in log
        assert "Exception in ASGI application" not in log


# --- strategies -------------------------------------------------------------------------------

TOKEN_CHARACTERS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

paths = st.one_of(
    st.sampled_from([f"/webhooks/{name}" for name in SOURCES]),
    st.sampled_from(
        ["/webhooks/unknown", "/webhooks/", "/webhooks", "/webhooks/stripe/extra", "/healthz"]
    ),
    st.text(min_size=1, max_size=30).map(lambda text: "/webhooks/" + quote(text, safe="")),
    st.binary(max_size=12).map(lambda raw: "/webhooks/" + "".join(f"%{b:02X}" for b in raw)),
    st.sampled_from(["/webhooks/stripe?x=1", "/webhooks/%2e%2e/healthz", "/webhooks/STRIPE"]),
)
methods = st.one_of(
    st.just("POST"),
    st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8),
)
header_names = st.one_of(
    st.sampled_from(SCHEME_HEADERS),
    st.sampled_from(["X-GitHub-Delivery", "Idempotency-Key", "Authorization", "Expect"]),
    st.text(alphabet=TOKEN_CHARACTERS, min_size=1, max_size=24),
)
header_values = st.one_of(
    # Any bytes but CR and LF, which would end the header: not UTF-8, NUL, controls.
    st.binary(max_size=120).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from(
        [
            b"t=1700000000,v1=" + b"0" * 64,
            b"sha256=" + b"f" * 64,
            b"v1,AAAA v1a,BBBB",
            b"v0=" + b"a" * 64,
            b"Bearer dev-only-guess",
            b"Basic Og==",
            b"1700000000",
            b"100-continue",
        ]
    ),
)
content_types = st.one_of(
    st.sampled_from(
        [
            None,
            "application/json",
            "application/json; charset=utf-8",
            "application/x-www-form-urlencoded",
            "text/plain",
            "*/*",
            "",
            "APPLICATION/JSON",
        ]
    ),
    st.text(max_size=40).map(lambda text: text.replace("\r", "").replace("\n", "")),
)
json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
GZIP_BOMB = gzip.compress(bytes(32 * 1024 * 1024), 9)
plain_bodies = st.one_of(
    st.binary(max_size=4096),
    # json, not orjson: integers past 64 bits and NaN are inputs worth sending.
    json_documents.map(lambda document: json.dumps(document).encode()),
    st.text(max_size=200).map(str.encode),
    st.sampled_from([b"", b"{}", b"[]", b"payload=%7B%7D", b"\xff\xfe\x00"]),
    st.sampled_from([1024 * 1024 + 1, 3 * 1024 * 1024]).map(lambda size: b"x" * size),
)
bodies = st.one_of(
    plain_bodies.map(lambda body: (body, None)),
    plain_bodies.map(lambda body: (gzip.compress(body), "gzip")),
    plain_bodies.map(lambda body: (zlib.compress(body), "deflate")),
    st.just((GZIP_BOMB, "gzip")),
    st.just((gzip.compress(b"{}")[:-5], "gzip")),
    st.binary(max_size=64).map(lambda body: (body, st_choice_encoding(body))),
)


def st_choice_encoding(body: bytes) -> str:
    # Encodings that do not match the body, chosen by its first byte.
    options = ["gzip", "x-gzip", "br", "gzip, gzip", "identity", "", "GZIP"]
    return options[body[0] % len(options)] if body else "gzip"


framings = st.sampled_from(["length", "length", "chunked", "short-length", "none"])


def frame(
    method: str,
    path: str,
    headers: list[tuple[str, bytes]],
    body: bytes,
    framing: str,
) -> bytes:
    if framing == "chunked":
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 8192]), body[i : i + 8192])
            for i in range(0, len(body), 8192)
        )
        return build_request(
            method, path, [*headers, ("Transfer-Encoding", b"chunked")], chunks + b"0\r\n\r\n"
        )
    if framing == "short-length":
        length = str(max(0, len(body) // 2)).encode()
        return build_request(method, path, [*headers, ("Content-Length", length)], body)
    if framing == "none":
        return build_request(method, path, headers, b"", content_length=False)
    return build_request(method, path, headers, body)


def check_response(method: str, path: str, response) -> None:
    if response is None:
        return
    assert response.status < 500, response.body[:300]
    if method == "POST" and path.startswith("/webhooks"):
        assert not 200 <= response.status < 300, response.body[:300]


# --- tests ------------------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(
    method=methods,
    path=paths,
    headers=st.lists(st.tuples(header_names, header_values), max_size=12),
    content_type=content_types,
    body_and_encoding=bodies,
    framing=framings,
)
def test_fuzz_requests_never_5xx_or_unsigned_2xx(
    server, method, path, headers, content_type, body_and_encoding, framing
):
    body, encoding = body_and_encoding
    sent_headers = [(name, value) for name, value in headers]
    if content_type is not None:
        sent_headers.append(("Content-Type", content_type.encode()))
    if encoding is not None:
        sent_headers.append(("Content-Encoding", encoding.encode()))

    response = exchange(server.port, frame(method, path, sent_headers, body, framing), 30.0)

    check_response(method, path, response)
    assert server.is_running(), server.log_text()


@FUZZ_SETTINGS
@given(source=st.sampled_from(SOURCES), headers=st.lists(st.tuples(header_names, header_values)))
def test_fuzz_scheme_headers_never_verify(server, source, headers):
    # Only the scheme's own header names and plausible values: the closest a
    # guess gets to a signature.
    body = b'{"id":"evt_fuzz","type":"fuzz"}'
    sent = [("Content-Type", b"application/json"), *headers]

    response = exchange(server.port, build_request("POST", f"/webhooks/{source}", sent, body))

    check_response("POST", f"/webhooks/{source}", response)


@FUZZ_SETTINGS
@given(
    data=st.one_of(
        st.binary(min_size=1, max_size=2048),
        st.binary(max_size=512).map(lambda raw: b"POST /webhooks/stripe HTTP/1.1\r\n" + raw),
        st.binary(max_size=512).map(lambda raw: b"POST " + raw + b" HTTP/1.1\r\n\r\n"),
        st.binary(max_size=256).map(
            lambda raw: b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n" + raw + b"\r\n\r\n"
        ),
    )
)
def test_fuzz_raw_bytes_never_5xx(server, data):
    response = exchange(server.port, data, timeout=30.0)

    if response is not None:
        assert response.status < 500
