"""Replayed requests: a copy inside the window gets 200 with the original's receipt and is
not produced again, a copy outside the tolerance gets 401, and a provider retry with a new
signature gets 200 and is produced.

The server runs in a thread with a clock the tests set, and a producer that can
fail on request, so the window, the tolerance and the 503 path are exercised
exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from test_hostile_server import ThreadServer, repository_config

from hookline import records
from hookline.config import ConfigError, HooklineConfig, parse_config
from hookline.errors import BrokerUnavailableError
from ingest.replay import ReplayCache, ReplayGuard, replay_key
from ingest.samples import build_sample
from ingest.schemes.base import ReplayIdentity, replay_material
from ingest.signing import github_headers, standard_webhooks_headers, stripe_headers

NOW = 1_767_225_600
GITHUB_WINDOW_SECONDS = 10


class Clock:
    """The application clock, set by the tests."""

    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


class FlakyProducer(RecordingProducer):
    """RecordingProducer whose next `fail_raw` sends to the raw topic raise, as a broker outage."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_raw = 0

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        if topic == RAW_TOPIC and self.fail_raw > 0:
            self.fail_raw -= 1
            raise BrokerUnavailableError(topic, "test outage")
        return await super().send_and_wait(topic, value, key, headers)


def make_config() -> HooklineConfig:
    raw = repository_config()
    raw["kafka"].update({"raw_topic": RAW_TOPIC, "rejected_topic": REJECTED_TOPIC})
    sources = raw["sources"]
    sources["github-replay"] = sources["github"] | {"replay_window_seconds": GITHUB_WINDOW_SECONDS}
    sources["stripe-no-replay"] = sources["stripe"] | {"replay_window_seconds": 0}
    return parse_config(raw)


CONFIG = make_config()


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[ThreadServer, FlakyProducer, Clock]]:
    producer, clock = FlakyProducer(), Clock()
    with ThreadServer(CONFIG, producer, clock=clock) as server:
        yield server, producer, clock


@pytest.fixture
def server(running: tuple[ThreadServer, FlakyProducer, Clock]) -> ThreadServer:
    return running[0]


@pytest.fixture
def producer(running: tuple[ThreadServer, FlakyProducer, Clock]) -> FlakyProducer:
    server, producer, _ = running
    server.settle()
    producer.records.clear()
    producer.fail_raw = 0
    return producer


@pytest.fixture
def clock(running: tuple[ThreadServer, FlakyProducer, Clock]) -> Iterator[Clock]:
    _, _, clock = running
    clock.now = NOW
    yield clock
    clock.now = NOW


def post(server: ThreadServer, source: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json"} | headers
    return httpx.post(
        f"{server.url}/webhooks/{source}", content=body, headers=headers, timeout=30.0
    )


def stripe_body() -> bytes:
    _, body = build_sample(CONFIG.sources["stripe"], now=NOW)
    return body


def stripe_request(body: bytes, timestamp: int) -> dict[str, str]:
    secret = CONFIG.sources["stripe"].secrets[0]
    return {"Content-Type": "application/json", **stripe_headers(secret, body, timestamp)}


# Second response to an identical copy of a sample, per source of config/hookline.toml.
IDENTICAL_COPY = {
    "stripe": (200, "replayed_request"),
    "standard-webhooks": (200, "replayed_request"),
    "slack": (200, "replayed_request"),
    "zoom": (200, "replayed_request"),
    "linear": (200, "replayed_request"),
    "paddle": (200, "replayed_request"),
    "gitlab-signed": (200, "replayed_request"),
    "generic-hmac": (200, "replayed_request"),
    # Mailgun's own token cache rejects the copy first.
    "mailgun": (401, "replayed_token"),
    # No tolerance configured, so no window by default.
    "discord": (200, None),
    "sendgrid": (200, None),
    # No signed timestamp, so no window by default: providers such as GitHub
    # redeliver with the same signature.
    "github": (200, None),
    "twilio": (200, None),
    "square": (200, None),
    "shopify": (200, None),
    "intercom": (200, None),
    "typeform": (200, None),
    "gitlab": (200, None),
    "token": (200, None),
    "basic-auth": (200, None),
}


def test_identical_copy_table_covers_every_source():
    assert set(IDENTICAL_COPY) == set(repository_config()["sources"])


@pytest.mark.parametrize("source", sorted(IDENTICAL_COPY))
def test_identical_copy_per_source(server, producer, clock, source):
    headers, body = build_sample(CONFIG.sources[source], now=NOW)
    status, reason = IDENTICAL_COPY[source]

    first = post(server, source, headers, body)
    second = post(server, source, headers, body)

    assert first.status_code == 200, first.text
    assert second.status_code == status, second.text
    if reason == "replayed_request":
        assert second.json()["receipt_id"] == first.json()["receipt_id"]
    elif reason is not None:
        assert second.json()["error"] == reason
    if reason is not None:
        assert len(producer.on(RAW_TOPIC)) == 1
        [rejected] = producer.wait_for(REJECTED_TOPIC, 1)
        assert rejected.headers[records.REASON] == reason.encode()
        assert rejected.headers[records.STATUS] == str(status).encode()
    else:
        assert len(producer.on(RAW_TOPIC)) == 2


def test_provider_retry_with_new_signature_accepted(server, producer, clock):
    body = stripe_body()

    first = post(server, "stripe", stripe_request(body, NOW), body)
    retry = post(server, "stripe", stripe_request(body, NOW + 1), body)

    assert first.status_code == 200
    assert retry.status_code == 200
    original, retried = producer.on(RAW_TOPIC)
    assert original.key == retried.key
    assert original.headers[records.EVENT_ID] == retried.headers[records.EVENT_ID]


def test_standard_webhooks_retry_same_id_accepted(server, producer, clock):
    _, body = build_sample(CONFIG.sources["standard-webhooks"], now=NOW)
    secret = CONFIG.sources["standard-webhooks"].secrets[0]
    first = standard_webhooks_headers(secret, body, NOW, "msg_retry")
    retry = standard_webhooks_headers(secret, body, NOW + 30, "msg_retry")

    responses = [post(server, "standard-webhooks", h, body) for h in (first, retry, retry)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert responses[2].json()["receipt_id"] == responses[1].json()["receipt_id"]
    assert len(producer.on(RAW_TOPIC)) == 2


def test_standard_webhooks_other_message_same_body_accepted(server, producer, clock):
    # The message id is signed, so two messages with equal bodies and timestamps differ.
    _, body = build_sample(CONFIG.sources["standard-webhooks"], now=NOW)
    secret = CONFIG.sources["standard-webhooks"].secrets[0]
    headers = [standard_webhooks_headers(secret, body, NOW, f"msg_{n}") for n in range(2)]

    responses = [post(server, "standard-webhooks", h, body) for h in headers]

    assert [r.status_code for r in responses] == [200, 200]


def test_rewritten_signature_header_still_a_copy(server, producer, clock):
    body = stripe_body()
    headers = stripe_request(body, NOW)
    timestamp, signature = headers["Stripe-Signature"].split(",")
    variants = [
        f"{signature},{timestamp}",
        f"{timestamp},v1={'0' * 64},{signature}",
        f"{timestamp}, {signature} ,v0=abc",
    ]

    first = post(server, "stripe", headers, body)
    copies = [post(server, "stripe", headers | {"Stripe-Signature": v}, body) for v in variants]

    assert first.status_code == 200
    assert [copy.status_code for copy in copies] == [200, 200, 200]
    assert {copy.json()["receipt_id"] for copy in copies} == {first.json()["receipt_id"]}
    assert len(producer.on(RAW_TOPIC)) == 1


def test_copy_outside_tolerance_gets_401(server, producer, clock):
    body = stripe_body()
    headers = stripe_request(body, NOW)

    first = post(server, "stripe", headers, body)
    clock.now = NOW + 301
    late = post(server, "stripe", headers, body)

    assert first.status_code == 200
    assert late.status_code == 401
    assert late.json()["error"] == "timestamp_outside_tolerance"


def test_future_timestamp_copy_rejected_until_it_expires(server, producer, clock):
    # Signed 200 s ahead of the clock: valid until NOW + 500, so remembered as long.
    body = stripe_body()
    headers = stripe_request(body, NOW + 200)

    first = post(server, "stripe", headers, body)
    clock.now = NOW + 450
    copy = post(server, "stripe", headers, body)

    assert first.status_code == 200
    assert copy.status_code == 200
    assert len(producer.on(RAW_TOPIC)) == 1


def test_window_zero_disables_check(server, producer, clock):
    body = stripe_body()
    headers = stripe_request(body, NOW)

    responses = [post(server, "stripe-no-replay", headers, body) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]


def test_explicit_window_without_timestamp(server, producer, clock):
    body = json.dumps({"zen": "window", "n": NOW}).encode()
    secret = CONFIG.sources["github-replay"].secrets[0]
    headers = {"X-GitHub-Delivery": "d-1", **github_headers(secret, body)}

    first = post(server, "github-replay", headers, body)
    clock.now = NOW + GITHUB_WINDOW_SECONDS / 2
    inside = post(server, "github-replay", headers, body)
    clock.now = NOW + GITHUB_WINDOW_SECONDS + 1
    after = post(server, "github-replay", headers, body)

    assert [first.status_code, inside.status_code, after.status_code] == [200, 200, 200]
    assert inside.json()["receipt_id"] == first.json()["receipt_id"]
    assert after.json()["receipt_id"] != first.json()["receipt_id"]
    assert len(producer.on(RAW_TOPIC)) == 2


def test_copy_accepted_after_503(server, producer, clock):
    body = stripe_body()
    headers = stripe_request(body, NOW)
    producer.fail_raw = 1

    failed = post(server, "stripe", headers, body)
    retry = post(server, "stripe", headers, body)

    assert failed.status_code == 503
    assert retry.status_code == 200
    assert len(producer.on(RAW_TOPIC)) == 1


def test_forged_requests_not_remembered(server, producer, clock):
    body = stripe_body()
    forged = {"Stripe-Signature": f"t={NOW},v1={'0' * 64}"}

    responses = [post(server, "stripe", forged, body) for _ in range(2)]
    genuine = post(server, "stripe", stripe_request(body, NOW), body)

    assert [r.status_code for r in responses] == [401, 401]
    assert genuine.status_code == 200


def test_replays_counted_in_metrics(server, producer, clock):
    body = stripe_body()
    headers = stripe_request(body, NOW)
    metric = 'hookline_ingest_rejections_total{reason="replayed_request",source="stripe"}'

    def replays() -> float:
        for line in httpx.get(f"{server.url}/metrics").text.splitlines():
            if line.startswith(metric):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = replays()
    post(server, "stripe", headers, body)
    post(server, "stripe", headers, body)

    assert replays() == before + 1


# --- the cache on its own ---------------------------------------------------------------------


def test_replay_cache_rejects_until_expiry():
    cache = ReplayCache(max_entries=10)

    assert cache.add(b"a", expires_at=100.0, now=0.0)
    assert not cache.add(b"a", expires_at=200.0, now=100.0)
    assert cache.add(b"a", expires_at=300.0, now=100.5)


def test_replay_cache_bounded_evicts_earliest_expiry():
    cache = ReplayCache(max_entries=3)
    for index, expiry in enumerate([50.0, 10.0, 30.0]):
        cache.add(index, expires_at=expiry, now=0.0)

    cache.add("new", expires_at=40.0, now=0.0)

    assert len(cache) == 3
    assert 1 not in cache
    assert {0, 2, "new"} <= {key for key in (0, 1, 2, "new") if key in cache}


def test_replay_cache_size_stays_bounded_under_flood():
    cache = ReplayCache(max_entries=1000)
    for index in range(50_000):
        cache.add(index, expires_at=1e9, now=0.0)

    assert len(cache) == 1000
    assert len(cache._by_expiry) <= 2 * 1000


def test_replay_cache_discard_then_add():
    cache = ReplayCache(max_entries=2)
    cache.add(b"a", expires_at=100.0, now=0.0)

    cache.discard(b"a")

    assert b"a" not in cache
    assert cache.add(b"a", expires_at=100.0, now=1.0)
    cache.add(b"b", expires_at=50.0, now=1.0)
    # The stale heap entry of the discarded "a" must not evict the live one.
    cache.add(b"c", expires_at=60.0, now=1.0)
    assert b"a" in cache
    assert b"b" not in cache


def test_replay_cache_invalid_size():
    with pytest.raises(ValueError, match="max_entries"):
        ReplayCache(max_entries=0)


def test_replay_key_separates_parts():
    body = b"{}"
    keys = {
        replay_key("stripe", ReplayIdentity(replay_material("ab", "c")), body),
        replay_key("stripe", ReplayIdentity(replay_material("a", "bc")), body),
        replay_key("stripe", ReplayIdentity(replay_material("abc")), body),
        replay_key("stripe2", ReplayIdentity(replay_material("ab", "c")), body),
        replay_key("stripe", ReplayIdentity(replay_material("ab", "c")), body + b" "),
    }

    assert len(keys) == 5


def test_replay_guard_ignores_timestamp_in_past():
    guard = ReplayGuard("s", window_seconds=60, max_entries=10)
    identity = ReplayIdentity(replay_material("1"), timestamp=0.0)

    assert guard.admit(identity, b"x", now=1000.0) is not None
    assert guard.admit(identity, b"x", now=1059.0) is None
    assert guard.admit(identity, b"x", now=1061.0) is not None


@pytest.mark.parametrize("value", [-1, 1.5, "300", True])
def test_replay_window_invalid_config(value):
    raw = repository_config()
    raw["sources"]["stripe"]["replay_window_seconds"] = value

    with pytest.raises(ConfigError, match="replay_window_seconds"):
        parse_config(raw)


def test_copy_of_unacknowledged_original_gets_409():
    # While the original waits for the broker, a copy must not count as stored,
    # because the original may still fail with 503.
    guard = ReplayGuard("stripe", window_seconds=300, max_entries=10)
    identity = ReplayIdentity(material=b"t=1", timestamp=NOW)
    key = guard.admit(identity, b"{}", NOW)

    assert key is not None
    assert guard.admit(identity, b"{}", NOW) is None
    assert guard.stored_receipt(identity, b"{}") is None

    guard.remember_receipt(key, "receipt-1")
    assert guard.stored_receipt(identity, b"{}") == "receipt-1"
