"""Unit tests of the static token and HTTP basic auth verifiers."""

from __future__ import annotations

import base64

import orjson
import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from litestar.testing import TestClient

from hookline import records
from hookline.config import HooklineConfig, KafkaConfig, SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.app import create_app
from ingest.schemes import create_verifier
from ingest.schemes.base import Verifier
from ingest.schemes.token import BasicAuthVerifier, StaticTokenVerifier
from ingest.signing import basic_auth_headers, token_headers

TOKEN = "test-only-static-token"
OTHER_TOKEN = "test-only-other-token"
USER = "hookline-test"
PASSWORD = "test-only-password"
NOW = 1767225600
BODY = b'{"id":"evt_1"}'


def reason_of(verifier: Verifier, headers: dict[str, str]) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, BODY, now=NOW)
    except VerificationError as error:
        return error.reason
    return None


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_token_bearer_default():
    verifier = StaticTokenVerifier([TOKEN])

    assert reason_of(verifier, {"Authorization": f"Bearer {TOKEN}"}) is None
    assert reason_of(verifier, {"Authorization": f"bearer {TOKEN}"}) is None
    assert reason_of(verifier, {"Authorization": f"Bearer {OTHER_TOKEN}"}) == "no_matching_token"


def test_token_without_bearer_malformed():
    verifier = StaticTokenVerifier([TOKEN])

    assert reason_of(verifier, {"Authorization": TOKEN}) == "malformed_header"
    assert reason_of(verifier, {"Authorization": f"Basic {TOKEN}"}) == "malformed_header"


def test_token_custom_header_no_prefix():
    verifier = StaticTokenVerifier([TOKEN], options={"header": "X-Webhook-Token"})

    assert reason_of(verifier, {"x-webhook-token": TOKEN}) is None
    assert reason_of(verifier, {"X-Webhook-Token": f"Bearer {TOKEN}"}) == "no_matching_token"
    assert reason_of(verifier, {"Authorization": f"Bearer {TOKEN}"}) == "missing_header"


def test_token_custom_prefix():
    verifier = StaticTokenVerifier([TOKEN], options={"header": "X-Auth", "prefix": "Token "})

    assert reason_of(verifier, {"X-Auth": f"Token {TOKEN}"}) is None
    assert reason_of(verifier, {"X-Auth": TOKEN}) == "malformed_header"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(TOKEN[:-1], id="shorter"),
        pytest.param(TOKEN + "0", id="longer"),
        pytest.param(TOKEN.upper(), id="different-case"),
        pytest.param("", id="empty"),
    ],
)
def test_token_near_misses_rejected(value):
    verifier = StaticTokenVerifier([TOKEN], options={"header": "X-Token"})

    assert reason_of(verifier, {"X-Token": value}) == "no_matching_token"


def test_token_rotation_either_accepted():
    verifier = StaticTokenVerifier([OTHER_TOKEN, TOKEN])

    assert reason_of(verifier, {"Authorization": f"Bearer {TOKEN}"}) is None
    assert reason_of(verifier, {"Authorization": f"Bearer {OTHER_TOKEN}"}) is None


def test_token_signing_helper_matches():
    options = {"header": "X-Token"}

    assert token_headers(TOKEN, {}) == {"Authorization": f"Bearer {TOKEN}"}
    assert token_headers(TOKEN, options) == {"X-Token": TOKEN}
    verifier = StaticTokenVerifier([TOKEN], options=options)
    assert reason_of(verifier, token_headers(TOKEN, options)) is None
    assert reason_of(StaticTokenVerifier([TOKEN]), token_headers(TOKEN, {})) is None


def test_token_empty_header_option_config_error():
    source = SourceConfig(name="t", scheme="token", secrets=(TOKEN,), options={"header": " "})

    with pytest.raises(ConfigError, match="header"):
        create_verifier(source)


def test_basic_auth_accepted():
    verifier = BasicAuthVerifier([f"{USER}:{PASSWORD}"])

    assert reason_of(verifier, basic(USER, PASSWORD)) is None


@pytest.mark.parametrize(
    ("user", "password"),
    [
        pytest.param(USER, "wrong", id="wrong-password"),
        pytest.param("someone", PASSWORD, id="wrong-user"),
        pytest.param(USER, PASSWORD + "x", id="password-longer"),
        pytest.param(USER, "", id="empty-password"),
    ],
)
def test_basic_auth_mismatch_rejected(user, password):
    verifier = BasicAuthVerifier([f"{USER}:{PASSWORD}"])

    assert reason_of(verifier, basic(user, password)) == "no_matching_credentials"


def test_basic_auth_pairs_not_mixed():
    # The user of one pair with the password of another must fail.
    verifier = BasicAuthVerifier(["alice:one", "bob:two"])

    assert reason_of(verifier, basic("alice", "one")) is None
    assert reason_of(verifier, basic("bob", "two")) is None
    assert reason_of(verifier, basic("alice", "two")) == "no_matching_credentials"


def test_basic_auth_password_with_colon():
    verifier = BasicAuthVerifier([f"{USER}:pa:ss"])

    assert reason_of(verifier, basic(USER, "pa:ss")) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"Bearer {TOKEN}", id="bearer"),
        pytest.param("Basic !!!not-base64", id="not-base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon").decode(), id="no-colon"),
    ],
)
def test_basic_auth_malformed_rejected(value):
    verifier = BasicAuthVerifier([f"{USER}:{PASSWORD}"])

    assert reason_of(verifier, {"Authorization": value}) == "malformed_header"


def test_basic_auth_scheme_case_insensitive():
    verifier = BasicAuthVerifier([f"{USER}:{PASSWORD}"])
    value = basic(USER, PASSWORD)["Authorization"].replace("Basic", "BASIC")

    assert reason_of(verifier, {"Authorization": value}) is None


def test_basic_auth_challenge_names_realm():
    verifier = BasicAuthVerifier([f"{USER}:{PASSWORD}"], options={"realm": "acme"})

    assert verifier.auth_challenge == 'Basic realm="acme", charset="UTF-8"'


@pytest.mark.parametrize("secret", ["no-colon", ":password-only"])
def test_basic_auth_bad_secret_config_error(secret):
    source = SourceConfig(name="basic", scheme="basic-auth", secrets=(secret,))

    with pytest.raises(ConfigError, match="user:password"):
        create_verifier(source)


def test_basic_auth_signing_helper_matches():
    assert basic_auth_headers(f"{USER}:{PASSWORD}") == basic(USER, PASSWORD)


def test_basic_auth_app_401_carries_challenge():
    producer = RecordingProducer()
    config = HooklineConfig(
        kafka=KafkaConfig(raw_topic=RAW_TOPIC, rejected_topic=REJECTED_TOPIC),
        sources={
            "basic": SourceConfig(
                name="basic",
                scheme="basic-auth",
                secrets=(f"{USER}:{PASSWORD}",),
                options={"realm": "webhooks"},
            ),
            "token": SourceConfig(name="token", scheme="token", secrets=(TOKEN,)),
        },
    )
    json_type = {"Content-Type": "application/json"}
    with TestClient(create_app(config, producer=producer)) as client:
        accepted = client.post(
            "/webhooks/basic", content=BODY, headers=json_type | basic(USER, PASSWORD)
        )
        rejected = client.post(
            "/webhooks/basic", content=BODY, headers=json_type | basic(USER, "x")
        )
        token_rejected = client.post("/webhooks/token", content=BODY, headers=json_type)

    assert accepted.status_code == 200
    assert rejected.status_code == 401
    assert rejected.json()["error"] == "no_matching_credentials"
    assert rejected.headers["www-authenticate"] == 'Basic realm="webhooks", charset="UTF-8"'
    assert token_rejected.status_code == 401
    assert "www-authenticate" not in token_rejected.headers
    [record] = producer.on(RAW_TOPIC)
    audited = orjson.loads(record.headers[records.REQUEST_HEADERS])
    assert audited["authorization"] == records.REDACTED
