"""End-to-end test: real broker, ingest, router and audit sink as separate processes.

The pipeline runs exactly as `hookline run` starts it, with a config of its own
(free ports, its own broker and chDB folder), so this test may stop the broker.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from pipeline_support import Pipeline, free_port, read_topic, wait_for_rows, write_config

from hookline.broker import LocalBroker, fetch_jars
from ingest.samples import build_sample
from ingest.signing import stripe_headers
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def e2e_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    fetch_jars()
    folder = tmp_path_factory.mktemp("e2e-kafka")
    broker = LocalBroker(data_dir=folder, port=free_port(), controller_port=free_port())
    broker.format()
    broker.start()
    try:
        broker.wait_ready(120.0)
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def pipeline(
    e2e_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    folder = tmp_path_factory.mktemp("e2e-pipeline")
    running = Pipeline(write_config(folder, e2e_broker.bootstrap_servers), folder)
    asyncio.run(ensure_topics(running.config))
    try:
        for name in ("sink", "router", "ingest"):
            running.start(name)
        running.wait_ready()
        yield running
    finally:
        running.stop_all()


def post(pipeline: Pipeline, source: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(
        f"{pipeline.ingest_url}/webhooks/{source}", content=body, headers=headers, timeout=30.0
    )


def test_pipeline_routes_and_audits_deliveries(pipeline: Pipeline) -> None:
    config = pipeline.config
    accepted: dict[str, bytes] = {}  # receipt id -> body
    event_ids: dict[str, str] = {}  # provider event id -> source

    # Distinct events from each of the three schemes.
    sent = []
    for source in ("stripe", "stripe", "github", "standard-webhooks"):
        headers, body = build_sample(config.sources[source])
        response = post(pipeline, source, headers, body)
        assert response.status_code == 200, response.text
        accepted[response.json()["receipt_id"]] = body
        sent.append((source, headers, body))

    # A provider retry of the first Stripe event, signed anew as Stripe does:
    # accepted and audited again, routed once.
    source, headers, body = sent[0]
    secret = config.sources["stripe"].secrets[0]
    retry_headers = headers | stripe_headers(secret, body, int(time.time()) + 1)
    retry = post(pipeline, source, retry_headers, body)
    assert retry.status_code == 200, retry.text
    accepted[retry.json()["receipt_id"]] = body

    # An identical copy of the retry gets the stored receipt and is not produced again.
    replay = post(pipeline, source, retry_headers, body)
    assert replay.status_code == 200, replay.text
    assert replay.json()["receipt_id"] == retry.json()["receipt_id"]

    # A forgery: the body of a real event with another event's signature.
    forged_headers = dict(sent[1][1])
    forged = post(pipeline, "stripe", forged_headers, sent[0][2] + b" ")
    assert forged.status_code == 401
    assert forged.json()["error"] == "no_matching_signature"

    # Every distinct event once in its routed topic, with CloudEvents headers.
    payments = asyncio.run(read_topic(config.kafka.bootstrap_servers, "events.stripe.payments", 2))
    ids = Counter(headers["ce_id"].decode() for _, _, headers in payments)
    assert len(payments) == 2, ids
    assert set(ids.values()) == {1}
    for _, value, headers in payments:
        assert headers["ce_specversion"] == b"1.0"
        assert headers["ce_type"] == b"payment_intent.succeeded"
        assert headers["ce_source"]
        assert headers["ce_time"]
        assert value in {sent[0][2], sent[1][2]}
        event_ids[headers["ce_id"].decode()] = "stripe"

    pushes = asyncio.run(read_topic(config.kafka.bootstrap_servers, "events.github.push", 1))
    assert len(pushes) == 1
    assert pushes[0][1] == sent[2][2]
    assert pushes[0][2]["ce_type"] == b"push"

    default = asyncio.run(read_topic(config.kafka.bootstrap_servers, "events.standard-webhooks", 1))
    assert len(default) == 1
    assert default[0][1] == sent[3][2]

    # Every accepted delivery, the retry too, is one row with the body intact.
    quoted = ", ".join(f"'{receipt}'" for receipt in accepted)
    rows = wait_for_rows(
        config,
        "SELECT toString(receipt_id), hex(body), count() OVER (PARTITION BY receipt_id) "
        f"FROM webhook_events WHERE toString(receipt_id) IN ({quoted})",
        len(accepted),
    )
    assert len(rows) == len(accepted)
    for receipt_id, body_hex, copies in rows:
        assert copies == 1
        assert bytes.fromhex(body_hex) == accepted[receipt_id]

    rejections = wait_for_rows(
        config,
        "SELECT source, status, reason FROM webhook_rejections WHERE reason != ''",
        1,
    )
    assert ("stripe", 401, "no_matching_signature") in [tuple(row) for row in rejections]


def test_pipeline_answers_503_while_broker_down(
    pipeline: Pipeline, e2e_broker: LocalBroker
) -> None:
    stripe = pipeline.config.sources["stripe"]
    e2e_broker.stop()
    try:
        for _ in range(3):
            headers, body = build_sample(stripe)
            response = post(pipeline, "stripe", headers, body)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "7"
    finally:
        e2e_broker.start()
        e2e_broker.wait_ready(120.0)

    # Ingest reconnects by itself; a provider's retry then succeeds.
    headers, body = build_sample(stripe)
    deadline = time.monotonic() + 60.0
    status = 0
    while time.monotonic() < deadline:
        status = post(pipeline, "stripe", headers, body).status_code
        if status == 200:
            break
        assert status == 503
        time.sleep(1.0)
    assert status == 200
