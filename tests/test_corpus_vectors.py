"""Documented signature vectors through the verifiers and the whole application.

Headers, bodies, secrets and clocks are copied from the webhook receiver
acceptance corpus, cases A03, A04, A11 and A20 to A26. Each case runs with
its own `now` as the application clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from litestar.testing import TestClient

from hookline import records
from hookline.config import HooklineConfig, KafkaConfig, SourceConfig
from hookline.errors import VerificationError
from ingest.app import create_app
from ingest.schemes import create_verifier
from ingest.signing import (
    hub_sha1_headers,
    linear_headers,
    paddle_headers,
    shopify_headers,
    slack_headers,
    typeform_headers,
    zoom_headers,
)


@dataclass(frozen=True)
class Case:
    """One documented request and what ingest must do with it."""

    source: SourceConfig
    headers: dict[str, str]
    body: bytes
    body_sha256: str
    now: float
    # Expected record key, or "receipt" when the key is the receipt id.
    key: str | None
    response_body: bytes | None = None


GITLAB_PUSH = (
    b'{"object_kind":"push","event_name":"push","before":"0000000000000000000000000000000000000000"'
    b',"after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","ref":"refs/heads/main",'
    b'"user_username":"jdoe","project":{"id":15,"path_with_namespace":"corpus/demo"},'
    b'"commits":[],"total_commits_count":0}'
)
PADDLE_SECRETS = (
    "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_TjIG2BXbm83HPXqNfziwe506sBEdqL/4",
    "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_vB/yIOnTOCWIvpBadM5jzBZPHc7OmdSo",
    "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh",
)

A03 = Case(
    source=SourceConfig(
        name="shopify",
        scheme="shopify",
        secrets=("shpss_corpus_fake_client_secret_0001",),
        event_id="header:X-Shopify-Webhook-Id",
        event_type="header:X-Shopify-Topic",
    ),
    headers={
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "corpus-demo.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2026-01-01T05:00:00.000000000Z",
        "X-Shopify-Hmac-Sha256": "kuv4YDN2z1h4yUzdM8GO681uIKc6HuXmImlx3EIH4uQ=",
    },
    body=(
        b'{"id":820982911946154508,"email":"jon.doe@example.com",'
        b'"created_at":"2026-01-01T00:00:00-05:00","total_price":"403.00","currency":"USD",'
        b'"line_items":[{"id":866550311766439020,"title":"Widget","quantity":1,'
        b'"price":"199.00"}]}'
    ),
    body_sha256="e7080658a12e41cb33b518e3819e2ddd3078df45b25401959e9f243521732f09",
    now=1767225600,
    key="shopify:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
)
A04 = Case(
    source=SourceConfig(
        name="slack",
        scheme="slack",
        secrets=("8f742231b10e8888abcd99yyyzzz85a5",),
        event_id="json:/event_id",
        content_types=("application/json", "application/x-www-form-urlencoded"),
    ),
    headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": (
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        ),
    },
    body=(
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    ),
    body_sha256="390eeeff8d0cb7c9f6ecf8a88c3df6452fea0914eb02f64844369f3758d8d330",
    now=1531420648,
    key="receipt",
)
A11 = Case(
    source=SourceConfig(
        name="paddle", scheme="paddle", secrets=PADDLE_SECRETS, event_id="json:/event_id"
    ),
    headers={
        "Content-Type": "application/json",
        "Paddle-Signature": (
            "ts=1696195954;h1=dummy;"
            "h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02"
        ),
    },
    body=b"hello-world",
    body_sha256="afa27b44d43b02a9fea41d13cedc2e4016cfcf87c5dbf990e593669aa8ce286d",
    now=1696195956,
    key="receipt",
)
A20 = Case(
    source=SourceConfig(
        name="gitlab",
        scheme="gitlab",
        secrets=("corpus-fake-gitlab-secret-token-0001",),
        event_id="header:Idempotency-Key",
        event_type="header:X-Gitlab-Event",
    ),
    headers={
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": "corpus-fake-gitlab-secret-token-0001",
        "X-Gitlab-Event-UUID": "7c2a6f2a-3c3f-4f5e-9d1c-000000000a20",
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "Idempotency-Key": "4b1c7f5e-1f0a-4a8e-9d7e-000000000a20",
    },
    body=GITLAB_PUSH,
    body_sha256="7907003d93494d62dc72a86509fbdd4e3ac317a448865bd43b9c59021ff39f75",
    now=1767225600,
    key="gitlab:4b1c7f5e-1f0a-4a8e-9d7e-000000000a20",
)
A21 = Case(
    source=SourceConfig(
        name="gitlab",
        scheme="gitlab",
        secrets=("whsec_MrDpeTx6XEeXCSGU3WhXbhH3DLcC/WcDR4mu33va1+M=",),
        event_id="header:Idempotency-Key",
        event_type="header:X-Gitlab-Event",
        options={"signing": "standard-webhooks"},
    ),
    headers={
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Push Hook",
        "Idempotency-Key": "4b1c7f5e-1f0a-4a8e-9d7e-000000000a21",
        "webhook-id": "4b1c7f5e-1f0a-4a8e-9d7e-000000000a21",
        "webhook-timestamp": "1767225600",
        "webhook-signature": "v1,wrqFvy3gURQTDcijGbjgvOIT17iGPBZEfa85BMSbp4k=",
    },
    body=GITLAB_PUSH,
    body_sha256="7907003d93494d62dc72a86509fbdd4e3ac317a448865bd43b9c59021ff39f75",
    now=1767225605,
    key="gitlab:4b1c7f5e-1f0a-4a8e-9d7e-000000000a21",
)
ZOOM_SOURCE = SourceConfig(
    name="zoom", scheme="zoom", secrets=("corpus_fake_zoom_secret_token",), event_type="json:/event"
)
A22 = Case(
    source=ZOOM_SOURCE,
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "x-zm-request-timestamp": "1767225600",
        "x-zm-signature": "v0=fb297a53e2dbf894a3bc13e3182f60ae357578add75de35d5950a154b106b42e",
    },
    body=(
        b'{"event":"meeting.started","event_ts":1767225600000,"payload":{"account_id":'
        b'"corpusAcct01","object":{"id":"85712345678","uuid":"4444AAAiAAAAAiAiAiiAii==",'
        b'"host_id":"corpusHost01","topic":"Weekly sync","type":2,'
        b'"start_time":"2026-01-01T00:00:00Z","timezone":"UTC","duration":30}}}'
    ),
    body_sha256="5d81ed3a183a412d285bca02d69d8cb0d2e0a76327ca4f95ba337623ad121a52",
    now=1767225602,
    key="receipt",
)
A23 = Case(
    source=ZOOM_SOURCE,
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "x-zm-request-timestamp": "1767225600",
        "x-zm-signature": "v0=7cd33b1d3a1d3a66f822222bec6aac7c44e146c433e07444b6450513c4309012",
    },
    body=(
        b'{"payload":{"plainToken":"corpusPlainToken_q8V0aZ"},"event_ts":1767225600000,'
        b'"event":"endpoint.url_validation"}'
    ),
    body_sha256="7339095eed1842d72ff96ab2ac8c9c609429f9252cf76a69fb5d239e705f3ba0",
    now=1767225601,
    key=None,
    response_body=(
        b'{"plainToken":"corpusPlainToken_q8V0aZ",'
        b'"encryptedToken":"d4a990610a9a773d044404726959f9420cba0e0a503043edf43a6ee5469b9e71"}'
    ),
)
A24 = Case(
    source=SourceConfig(
        name="linear",
        scheme="linear",
        secrets=("lin_wh_corpus_fake_secret_0001",),
        event_id="header:Linear-Delivery",
        event_type="json:/type",
    ),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "Linear-Delivery": "234d1a4e-0000-4000-8000-000000000a24",
        "Linear-Event": "Issue",
        "Linear-Signature": "52c691890df7c97b9605fcb5546d245c8ffd70858f1dee7bffa35166058e646d",
    },
    body=(
        b'{"action":"update","type":"Issue","createdAt":"2026-01-01T00:00:00.000Z",'
        b'"organizationId":"0f3c2b1a-0000-4000-8000-000000000a24",'
        b'"url":"https://linear.app/corpus/issue/COR-1",'
        b'"webhookId":"1c2d3e4f-0000-4000-8000-000000000a24","webhookTimestamp":1767225600250,'
        b'"data":{"id":"2a3b4c5d-0000-4000-8000-000000000a24","identifier":"COR-1",'
        b'"title":"Fix login","priority":2},"updatedFrom":{"priority":3}}'
    ),
    body_sha256="4ed7459ff44bafb864dc8aa71f005385c03bfc3734b81d5c91466b0337f4d999",
    now=1767225610,
    key="linear:234d1a4e-0000-4000-8000-000000000a24",
)
A25 = Case(
    source=SourceConfig(
        name="intercom",
        scheme="intercom",
        secrets=("corpus_fake_intercom_client_secret",),
        event_id="json:/id",
        event_type="json:/topic",
    ),
    headers={
        "Content-Type": "application/json",
        "User-Agent": "intercom-parrot-service-client/1.0",
        "X-Hub-Signature": "sha1=9d5e95ceb1c7e7599c9527fc4781573738a54fc5",
    },
    body=(
        b'{"type":"notification_event","app_id":"corpusapp","data":{"type":'
        b'"notification_event_data","item":{"type":"conversation","id":"123456789",'
        b'"title":null,"state":"open"}},"id":"notif_corpus_a25",'
        b'"topic":"conversation.user.created","delivery_status":"pending",'
        b'"delivery_attempts":1,"created_at":1767225600,"first_sent_at":1767225600}'
    ),
    body_sha256="d3df584f38a493ec359ca17997dd4df6ae713700728ff5409f3c51c320a35ba1",
    now=1767225600,
    key="intercom:notif_corpus_a25",
)
A26 = Case(
    source=SourceConfig(
        name="typeform",
        scheme="typeform",
        secrets=("corpus-fake-typeform-secret",),
        event_id="json:/event_id",
        event_type="json:/event_type",
    ),
    headers={
        "Content-Type": "application/json",
        "Typeform-Signature": "sha256=lM1ECRIH2+/M6KRcikNGicKUrKNlqxt1xMhpYayGaR8=",
    },
    body=(
        b'{"event_id":"01JCORPUSA26","event_type":"form_response","form_response":'
        b'{"form_id":"lT4Z3j","token":"a3a12ec67a1365927098a606107fac15",'
        b'"submitted_at":"2026-01-01T00:00:00Z","answers":[{"type":"text",'
        b'"text":"Lorem ipsum","field":{"id":"fld1","type":"short_text"}}]}}'
    ),
    body_sha256="66ea5550f1186a2bd7eec41fda55e129af18f6d3a968ad95cbcf9c6347e857d6",
    now=1767225600,
    key="typeform:01JCORPUSA26",
)

CASES = [
    pytest.param(A03, id="A03-shopify"),
    pytest.param(A04, id="A04-slack-docs-example"),
    pytest.param(A11, id="A11-paddle-rotation"),
    pytest.param(A20, id="A20-gitlab-secret-token"),
    pytest.param(A21, id="A21-gitlab-signing-token"),
    pytest.param(A22, id="A22-zoom-event"),
    pytest.param(A23, id="A23-zoom-url-validation"),
    pytest.param(A24, id="A24-linear"),
    pytest.param(A25, id="A25-intercom"),
    pytest.param(A26, id="A26-typeform"),
]
# Cases whose scheme checks a timestamp, with the scheme's default tolerance.
TIMED_CASES = [
    pytest.param(A04, 300, id="A04-slack"),
    pytest.param(A11, 5, id="A11-paddle"),
    pytest.param(A21, 300, id="A21-gitlab-signing-token"),
    pytest.param(A22, 300, id="A22-zoom"),
    pytest.param(A24, 60, id="A24-linear"),
]


def post(case: Case, now: float | None = None, source: SourceConfig | None = None):
    """POST CASE to an application with only its source and the clock at NOW."""
    source = source or case.source
    producer = RecordingProducer()
    config = HooklineConfig(
        kafka=KafkaConfig(raw_topic=RAW_TOPIC, rejected_topic=REJECTED_TOPIC),
        sources={source.name: source},
    )
    clock_value = case.now if now is None else now
    app = create_app(config, producer=producer, clock=lambda: clock_value)
    with TestClient(app) as client:
        response = client.post(f"/webhooks/{source.name}", content=case.body, headers=case.headers)
    return response, producer


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_verifier_accepts(case):
    verifier = create_verifier(case.source)

    verifier.verify(case.headers, case.body, now=case.now)


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_through_app(case):
    response, producer = post(case)

    assert response.status_code == 200
    raw = producer.on(RAW_TOPIC)
    if case.response_body is not None:
        assert response.content == case.response_body
        assert raw == []
        return

    [record] = raw
    assert record.value == case.body
    receipt_id = response.json()["receipt_id"]
    expected_key = f"{case.source.name}:{receipt_id}" if case.key == "receipt" else case.key
    assert record.key == expected_key.encode()
    received_at = records.format_time(datetime.fromtimestamp(case.now, UTC))
    assert record.headers[records.RECEIVED_AT] == received_at.encode()
    assert producer.on(REJECTED_TOPIC) == []


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_other_secret_401(case):
    other = "whsec_" + "b3RoZXItdGVzdC1vbmx5LXNlY3JldA=="  # valid for every scheme here
    source = replace(case.source, secrets=(other,))

    response, producer = post(case, source=source)

    assert response.status_code == 401
    assert response.json()["error"] in {"no_matching_signature", "no_matching_token"}
    assert producer.on(RAW_TOPIC) == []


@pytest.mark.parametrize(("case", "tolerance"), TIMED_CASES)
def test_corpus_case_outside_tolerance_401(case, tolerance):
    with pytest.raises(VerificationError) as caught:
        create_verifier(case.source).verify(case.headers, case.body, now=case.now + 400)

    assert create_verifier(case.source).tolerance_seconds == tolerance
    assert caught.value.reason == "timestamp_outside_tolerance"
    response, producer = post(case, now=case.now - 400)
    assert response.status_code == 401
    assert response.json()["error"] == "timestamp_outside_tolerance"
    assert producer.on(RAW_TOPIC) == []


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_tampered_body_401(case):
    tampered = replace(case, body=case.body[:-1] + bytes([case.body[-1] ^ 1]))

    response, producer = post(tampered)

    if case.source.scheme == "gitlab" and not case.source.options:
        # The secret token does not cover the body, so a changed body still passes.
        assert response.status_code == 200
    else:
        assert response.status_code in (400, 401)
        assert producer.on(RAW_TOPIC) == []


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_body_intact(case):
    # The SHA-256 published with each case catches a copy error in the literals.
    assert hashlib.sha256(case.body).hexdigest() == case.body_sha256


def test_corpus_signing_helpers_reproduce_vectors():
    assert shopify_headers(A03.source.secrets[0], A03.body) == {
        "X-Shopify-Hmac-Sha256": A03.headers["X-Shopify-Hmac-Sha256"]
    }
    assert slack_headers(A04.source.secrets[0], A04.body, 1531420618) == {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": A04.headers["X-Slack-Signature"],
    }
    paddle = paddle_headers(PADDLE_SECRETS[2], A11.body, 1696195954)["Paddle-Signature"]
    assert paddle == "ts=1696195954;h1=" + A11.headers["Paddle-Signature"].split("h1=")[-1]
    for case in (A22, A23):
        assert zoom_headers(ZOOM_SOURCE.secrets[0], case.body, 1767225600) == {
            "x-zm-request-timestamp": "1767225600",
            "x-zm-signature": case.headers["x-zm-signature"],
        }
    assert linear_headers(A24.source.secrets[0], A24.body) == {
        "Linear-Signature": A24.headers["Linear-Signature"]
    }
    assert hub_sha1_headers(A25.source.secrets[0], A25.body) == {
        "X-Hub-Signature": A25.headers["X-Hub-Signature"]
    }
    assert typeform_headers(A26.source.secrets[0], A26.body) == {
        "Typeform-Signature": A26.headers["Typeform-Signature"]
    }


def test_corpus_a21_as_standard_webhooks_source():
    # The documented alternative: a standard-webhooks source for GitLab signing tokens.
    source = SourceConfig(
        name="gitlab",
        scheme="standard-webhooks",
        secrets=A21.source.secrets,
        event_id="header:webhook-id",
    )

    response, producer = post(A21, source=source)

    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].key == b"gitlab:4b1c7f5e-1f0a-4a8e-9d7e-000000000a21"


def test_corpus_a21_secret_token_source_rejects():
    # Without the signing option the request has no X-Gitlab-Token.
    source = replace(A21.source, options={})

    response, _ = post(A21, source=source)

    assert response.status_code == 401
    assert response.json()["error"] == "missing_header"


def test_corpus_a11_paddle_only_third_secret_matches():
    for secret in PADDLE_SECRETS[:2]:
        source = replace(A11.source, secrets=(secret,))
        with pytest.raises(VerificationError):
            create_verifier(source).verify(A11.headers, A11.body, now=A11.now)

    create_verifier(replace(A11.source, secrets=PADDLE_SECRETS[2:])).verify(
        A11.headers, A11.body, now=A11.now
    )
