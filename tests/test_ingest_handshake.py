"""Provider handshakes through the application: replied to after verification, never produced."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from litestar import Litestar
from litestar.testing import TestClient

from hookline import records
from hookline.config import HooklineConfig, KafkaConfig, SourceConfig
from ingest.app import create_app
from ingest.signing import slack_headers, zoom_headers

SLACK_SECRET = "test-only-handshake-slack-secret"
ZOOM_SECRET = "test-only-handshake-zoom-token"
NOW = 1767225600
SLACK_CHALLENGE = (
    b'{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":'
    b'"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'
)
ZOOM_VALIDATION = (
    b'{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1767225600000,'
    b'"event":"endpoint.url_validation"}'
)


def make_config() -> HooklineConfig:
    return HooklineConfig(
        kafka=KafkaConfig(raw_topic=RAW_TOPIC, rejected_topic=REJECTED_TOPIC),
        sources={
            "slack": SourceConfig(
                name="slack",
                scheme="slack",
                secrets=(SLACK_SECRET,),
                event_id="json:/event_id",
                content_types=("application/json", "application/x-www-form-urlencoded"),
            ),
            "zoom": SourceConfig(
                name="zoom", scheme="zoom", secrets=(ZOOM_SECRET,), event_type="json:/event"
            ),
        },
    )


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def client(producer: RecordingProducer) -> Iterator[TestClient[Litestar]]:
    app = create_app(make_config(), producer=producer, clock=lambda: NOW + 1.5)
    with TestClient(app) as test_client:
        yield test_client


def json_headers(signature: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", **signature}


def test_handshake_slack_challenge_answered(client, producer):
    headers = json_headers(slack_headers(SLACK_SECRET, SLACK_CHALLENGE, NOW))

    response = client.post("/webhooks/slack", content=SLACK_CHALLENGE, headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert producer.records == []


def test_handshake_slack_forged_challenge_401(client, producer):
    headers = json_headers(slack_headers("not-the-secret", SLACK_CHALLENGE, NOW))

    response = client.post("/webhooks/slack", content=SLACK_CHALLENGE, headers=headers)

    assert response.status_code == 401
    assert "3eZbrw1a" not in response.text
    assert producer.on(RAW_TOPIC) == []
    assert producer.wait_for(REJECTED_TOPIC, 1)[0].headers[records.STATUS] == b"401"


def test_handshake_slack_stale_challenge_401(producer):
    app = create_app(make_config(), producer=producer, clock=lambda: NOW + 301)
    headers = json_headers(slack_headers(SLACK_SECRET, SLACK_CHALLENGE, NOW))
    with TestClient(app) as client:
        response = client.post("/webhooks/slack", content=SLACK_CHALLENGE, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "timestamp_outside_tolerance"


def test_handshake_slack_event_still_produced(client, producer):
    body = b'{"type":"event_callback","event_id":"Ev01HANDSHAKE","event":{"type":"message"}}'
    headers = json_headers(slack_headers(SLACK_SECRET, body, NOW))

    response = client.post("/webhooks/slack", content=body, headers=headers)

    assert response.status_code == 200
    assert "receipt_id" in response.json()
    [record] = producer.on(RAW_TOPIC)
    assert record.key == b"slack:Ev01HANDSHAKE"


def test_handshake_slack_without_challenge_400(client, producer):
    body = b'{"type":"url_verification"}'
    headers = json_headers(slack_headers(SLACK_SECRET, body, NOW))

    response = client.post("/webhooks/slack", content=body, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_body"
    assert producer.on(RAW_TOPIC) == []


def test_handshake_zoom_validation_answered(client, producer):
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        **zoom_headers(ZOOM_SECRET, ZOOM_VALIDATION, NOW),
    }

    response = client.post("/webhooks/zoom", content=ZOOM_VALIDATION, headers=headers)

    expected_token = hmac.new(
        ZOOM_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256
    ).hexdigest()
    assert response.status_code == 200
    assert json.loads(response.content) == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": expected_token,
    }
    assert producer.records == []


def test_handshake_zoom_forged_validation_401(client, producer):
    headers = json_headers(zoom_headers("not-the-token", ZOOM_VALIDATION, NOW))

    response = client.post("/webhooks/zoom", content=ZOOM_VALIDATION, headers=headers)

    assert response.status_code == 401
    assert "encryptedToken" not in response.text


def test_handshake_counted_in_metrics(client):
    headers = json_headers(zoom_headers(ZOOM_SECRET, ZOOM_VALIDATION, NOW))
    client.post("/webhooks/zoom", content=ZOOM_VALIDATION, headers=headers)

    metrics = client.get("/metrics").text

    assert 'hookline_ingest_requests_total{source="zoom",status="200"} 1.0' in metrics
    assert 'hookline_ingest_produce_seconds_count{outcome="acked"}' not in metrics


@pytest.mark.parametrize(
    ("source", "body", "sign"),
    [
        pytest.param("slack", b"\xff\xfe\x80{", slack_headers, id="slack-not-utf8"),
        pytest.param("slack", b'{"type":"url_verif', slack_headers, id="slack-truncated-json"),
        pytest.param("zoom", b"\xff\xfe\x80{", zoom_headers, id="zoom-not-utf8"),
    ],
)
def test_handshake_signed_non_json_body_produced(client, producer, source, body, sign):
    # A verified body that is not a handshake is an event, whatever its bytes.
    secret = SLACK_SECRET if source == "slack" else ZOOM_SECRET
    headers = json_headers(sign(secret, body, NOW))

    response = client.post(f"/webhooks/{source}", content=body, headers=headers)

    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].value == body


@pytest.mark.parametrize(
    ("source", "body"),
    [
        pytest.param("slack", b"\xff\xfe\x80{", id="slack-not-utf8"),
        pytest.param("zoom", b"\x00\xc3(", id="zoom-not-utf8"),
    ],
)
def test_handshake_forged_non_utf8_body_401(client, producer, source, body):
    headers = json_headers(slack_headers("wrong", body, NOW) | zoom_headers("wrong", body, NOW))

    response = client.post(f"/webhooks/{source}", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "no_matching_signature"
