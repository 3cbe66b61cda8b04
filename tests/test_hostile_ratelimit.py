"""Per-source rate limits: a token bucket per source, 429 with Retry-After, checked before the body.

The HTTP tests run ingest in a thread; the token bucket tests use a fake clock.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from test_hostile_server import HOST, ThreadServer, build_request, read_response, repository_config

from hookline import records
from hookline.config import ConfigError, HooklineConfig, parse_config
from ingest.samples import build_sample
from ingest.token_bucket import TokenBucket, retry_after_seconds, source_bucket

# One request per 100 s after a burst of 3, so no token returns during a test.
RATE_PER_SECOND = 0.01
BURST = 3


def make_config() -> HooklineConfig:
    raw = repository_config()
    raw["kafka"].update({"raw_topic": RAW_TOPIC, "rejected_topic": REJECTED_TOPIC})
    raw["sources"]["stripe"].update(
        {"rate_limit_per_second": RATE_PER_SECOND, "rate_limit_burst": BURST}
    )
    return parse_config(raw)


CONFIG = make_config()


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def server(producer: RecordingProducer) -> Iterator[ThreadServer]:
    with ThreadServer(CONFIG, producer) as running:
        yield running


def post_sample(server: ThreadServer, source: str) -> httpx.Response:
    headers, body = build_sample(CONFIG.sources[source])
    return httpx.post(
        f"{server.url}/webhooks/{source}", content=body, headers=headers, timeout=30.0
    )


def metric_value(server: ThreadServer, sample: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_burst_then_429_with_retry_after(server, producer):
    responses = [post_sample(server, "stripe") for _ in range(BURST + 2)]

    assert [r.status_code for r in responses] == [200] * BURST + [429, 429]
    limited = responses[-1]
    assert limited.json()["error"] == "rate_limited"
    # The next token arrives in 100 s, rounded up to whole seconds.
    assert 1 <= int(limited.headers["retry-after"]) <= 100
    assert len(producer.on(RAW_TOPIC)) == BURST


def test_rate_limited_request_recorded(server, producer):
    for _ in range(BURST + 1):
        post_sample(server, "stripe")

    [rejected] = producer.wait_for(REJECTED_TOPIC, 1)

    assert rejected.headers[records.STATUS] == b"429"
    assert rejected.headers[records.REASON] == b"rate_limited"
    assert rejected.headers[records.SOURCE] == b"stripe"
    assert rejected.headers[records.REMOTE_ADDR] == b"127.0.0.1"
    # The body is not read, so the record has none.
    assert rejected.value == b""


def test_rate_limited_counted_in_metrics(server, producer):
    for _ in range(BURST + 2):
        post_sample(server, "stripe")

    rejections = 'hookline_ingest_rejections_total{reason="rate_limited",source="stripe"}'
    requests = 'hookline_ingest_requests_total{source="stripe",status="429"}'
    assert metric_value(server, rejections) == 2
    assert metric_value(server, requests) == 2


def test_other_sources_not_limited(server, producer):
    for _ in range(BURST + 1):
        post_sample(server, "stripe")

    responses = [post_sample(server, "github") for _ in range(BURST + 2)]

    assert [r.status_code for r in responses] == [200] * (BURST + 2)


def test_limit_checked_before_body_read(server, producer):
    for _ in range(BURST):
        post_sample(server, "stripe")
    # Headers announce a body that never comes, so only a check that needs no
    # body can respond before the body read timeout.
    headers = [("Content-Type", "application/json"), ("Content-Length", "100000")]
    with socket.create_connection((HOST, server.port), timeout=10.0) as sock:
        sock.sendall(build_request("POST", "/webhooks/stripe", headers))
        response = read_response(sock)

    assert response is not None
    assert response.status == 429


def test_forged_requests_use_tokens(server, producer):
    # The limit protects the body read and the signature check, so every
    # request counts, authentic or not.
    for _ in range(BURST):
        httpx.post(f"{server.url}/webhooks/stripe", content=b"{}", timeout=30.0)

    assert post_sample(server, "stripe").status_code == 429


# --- the bucket on its own --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_refill():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=2.0, burst=3, clock=clock)

    waits = [bucket.take() for _ in range(4)]
    clock.now += 0.25
    half_refilled = bucket.take()
    clock.now += 0.25
    refilled = bucket.take()

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.5)
    assert half_refilled == pytest.approx(0.25)
    assert refilled == 0.0


def test_token_bucket_refill_capped_at_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=10.0, burst=2, clock=clock)
    clock.now += 3600

    waits = [bucket.take() for _ in range(3)]

    assert waits[:2] == [0.0, 0.0]
    assert waits[2] > 0


def test_token_bucket_clock_going_back_adds_nothing():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=1.0, burst=1, clock=clock)
    bucket.take()
    clock.now -= 50

    assert bucket.take() > 0


@pytest.mark.parametrize(
    ("wait", "expected"),
    [(0.001, 1), (0.999, 1), (1.0, 1), (1.01, 2), (99.5, 100)],
)
def test_retry_after_whole_seconds_at_least_one(wait, expected):
    assert retry_after_seconds(wait) == expected


def test_source_bucket_default_burst():
    raw = repository_config()
    raw["sources"]["stripe"]["rate_limit_per_second"] = 2.5

    bucket = source_bucket(parse_config(raw).sources["stripe"])

    assert bucket is not None
    assert bucket.burst == 3


def test_source_without_limit_has_no_bucket():
    assert source_bucket(CONFIG.sources["github"]) is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"rate_limit_per_second": 0}, "rate_limit_per_second", id="zero-rate"),
        pytest.param({"rate_limit_per_second": -1.5}, "rate_limit_per_second", id="negative"),
        pytest.param({"rate_limit_per_second": "10"}, "rate_limit_per_second", id="text"),
        pytest.param({"rate_limit_per_second": True}, "rate_limit_per_second", id="bool"),
        pytest.param(
            {"rate_limit_per_second": 5, "rate_limit_burst": 0}, "rate_limit_burst", id="burst-0"
        ),
        pytest.param(
            {"rate_limit_per_second": 5, "rate_limit_burst": 2.5}, "rate_limit_burst", id="float"
        ),
        pytest.param({"rate_limit_burst": 5}, "without rate_limit_per_second", id="burst-alone"),
    ],
)
def test_rate_limit_invalid_config(settings, message):
    raw = repository_config()
    raw["sources"]["stripe"].update(settings)

    with pytest.raises(ConfigError, match=message):
        parse_config(raw)
