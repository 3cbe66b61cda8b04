"""Documented Slack failure cases: form bodies with '+' (B05) and retried events (B14).

Headers, bodies, secrets and clocks are copied from the webhook receiver
acceptance corpus, cases B05 and B14. Each case runs with its own `now` as
the application clock.
"""

from __future__ import annotations

import dataclasses
import hashlib
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import orjson
import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from litestar.testing import TestClient

from hookline import records
from hookline.config import HooklineConfig, KafkaConfig, SourceConfig
from ingest.app import create_app
from streams.dedupe import Deduplicator
from streams.envelope import parse_raw_record

SECRET = "corpus_fake_slack_signing_secret_b05"
SOURCE = SourceConfig(
    name="slack",
    scheme="slack",
    secrets=(SECRET,),
    event_id="json:/event_id",
    event_type="json:/event/type",
    content_types=("application/json", "application/x-www-form-urlencoded"),
)

B05_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "X-Slack-Request-Timestamp": "1767225600",
    "X-Slack-Signature": "v0=f50d26d144e6ce8dcdc9c937f1fe4fc1932f9e855f1274bd7b535518ccd5550f",
}
B05_BODY = (
    b"token=corpusVerificationTok&team_id=T0CORPUS1&team_domain=corpus&channel_id=C0CORPUS1"
    b"&channel_name=deploys&user_id=U0CORPUS1&user_name=jdoe&command=%2Fdeploy"
    b"&text=api+production+--force&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT0CORPUS1%2F1%2Fabc&trigger_id=1.2.3"
)
B05_NOW = 1767225603

B14_HEADERS = {
    "Content-Type": "application/json",
    "X-Slack-Request-Timestamp": "1767225600",
    "X-Slack-Signature": "v0=ef0e4d303247e910ea71d1c0ec680478d42667c90689d3b438ca0856ecf330d2",
    "X-Slack-Retry-Num": "1",
    "X-Slack-Retry-Reason": "http_timeout",
}
B14_BODY = (
    b'{"token":"corpusVerificationTok","team_id":"T0CORPUS1","api_app_id":"A0CORPUS1",'
    b'"event":{"type":"app_mention","user":"U0CORPUS1","text":"<@U0BOT> deploy",'
    b'"ts":"1767225590.000100","channel":"C0CORPUS1","event_ts":"1767225590.000100"},'
    b'"type":"event_callback","event_id":"Ev0CORPUSB14","event_time":1767225590}'
)
B14_NOW = 1767225601


def post_all(
    requests: list[tuple[dict[str, str], bytes]], now: float, source: SourceConfig = SOURCE
) -> tuple[list[httpx.Response], RecordingProducer]:
    """POST each (headers, body) to one application whose clock reads NOW."""
    producer = RecordingProducer()
    config = HooklineConfig(
        kafka=KafkaConfig(raw_topic=RAW_TOPIC, rejected_topic=REJECTED_TOPIC),
        sources={"slack": source},
    )
    with TestClient(create_app(config, producer=producer, clock=lambda: now)) as client:
        responses = [
            client.post("/webhooks/slack", content=body, headers=headers)
            for headers, body in requests
        ]
    return responses, producer


def test_corpus_bodies_intact():
    assert hashlib.sha256(B05_BODY).hexdigest() == (
        "cd07a4a84b65591802fe87907b3782fbddc6de4355b7abe2005b70309ccd954b"
    )
    assert hashlib.sha256(B14_BODY).hexdigest() == (
        "67cd449a8fc71eafe90cfd40c9d24bfa7127a98cb658c2a727287ecbfce002e5"
    )


def test_corpus_b05_raw_form_body_accepted():
    responses, producer = post_all([(B05_HEADERS, B05_BODY)], B05_NOW)

    assert [response.status_code for response in responses] == [200]
    [record] = producer.on(RAW_TOPIC)
    assert record.value == B05_BODY
    assert b"text=api+production+--force" in record.value
    assert record.headers[records.CONTENT_TYPE] == b"application/x-www-form-urlencoded"


def reencoded_with_percent_20(body: bytes) -> bytes:
    # What querystring.stringify produced in the reported bug: spaces as %20.
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    return urlencode(pairs, quote_via=quote).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(reencoded_with_percent_20(B05_BODY), id="spaces-as-percent-20"),
        pytest.param(b"", id="body-consumed-by-form-parser"),
    ],
)
def test_corpus_b05_rebuilt_body_rejected(body):
    responses, producer = post_all([(B05_HEADERS, body)], B05_NOW)

    assert body != B05_BODY
    assert [response.status_code for response in responses] == [401]
    assert producer.on(RAW_TOPIC) == []


def test_corpus_b14_retry_accepted_with_event_key():
    responses, producer = post_all([(B14_HEADERS, B14_BODY)], B14_NOW)

    assert [response.status_code for response in responses] == [200]
    [record] = producer.on(RAW_TOPIC)
    assert record.key == b"slack:Ev0CORPUSB14"
    assert record.headers[records.EVENT_ID] == b"Ev0CORPUSB14"
    assert record.headers[records.EVENT_TYPE] == b"app_mention"
    audited = orjson.loads(record.headers[records.REQUEST_HEADERS])
    assert audited["x-slack-retry-num"] == "1"
    assert audited["x-slack-retry-reason"] == "http_timeout"


def test_corpus_b14_retries_answered_not_produced():
    # The retry headers are not signed, so the first delivery had the same signature.
    original = {k: v for k, v in B14_HEADERS.items() if not k.startswith("X-Slack-Retry")}
    second_retry = B14_HEADERS | {"X-Slack-Retry-Num": "2"}
    requests = [(original, B14_BODY), (B14_HEADERS, B14_BODY), (second_retry, B14_BODY)]

    responses, producer = post_all(requests, B14_NOW)

    assert [response.status_code for response in responses] == [200, 200, 200]
    receipts = {response.json()["receipt_id"] for response in responses}
    assert len(receipts) == 1  # each retry gets the stored original's receipt
    [raw] = producer.on(RAW_TOPIC)
    assert raw.key == b"slack:Ev0CORPUSB14"
    # Each retry is recorded for the audit log, but produced to the raw topic only once.
    replays = producer.wait_for(REJECTED_TOPIC, 2)
    assert [record.headers[records.REASON] for record in replays] == [b"replayed_request"] * 2
    assert [record.headers[records.STATUS] for record in replays] == [b"200"] * 2


def test_corpus_b14_router_drops_retry():
    # With the replay window off (or a retry reaching another ingest replica), both
    # deliveries are produced, and the router drops the retry as a repeat.
    source = dataclasses.replace(SOURCE, replay_window_seconds=0)
    original = {k: v for k, v in B14_HEADERS.items() if not k.startswith("X-Slack-Retry")}
    _, producer = post_all([(original, B14_BODY), (B14_HEADERS, B14_BODY)], B14_NOW, source)
    deduplicator = Deduplicator({}, window_seconds=3600.0, clock=lambda: B14_NOW)

    raw = producer.on(RAW_TOPIC)
    assert [record.key for record in raw] == [b"slack:Ev0CORPUSB14"] * 2
    repeats = [
        deduplicator.is_repeat(
            parse_raw_record(record.key, record.value, list(record.headers.items())), partition=0
        )
        for record in raw
    ]

    assert repeats == [False, True]


def test_corpus_b14_stale_retry_rejected():
    # Slack retries within minutes, so the same bytes an hour later are outside tolerance.
    responses, producer = post_all([(B14_HEADERS, B14_BODY)], B14_NOW + 3600)

    assert [response.status_code for response in responses] == [401]
    assert producer.on(RAW_TOPIC) == []
