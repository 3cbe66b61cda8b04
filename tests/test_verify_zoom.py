"""Unit tests of the Zoom verifier and its endpoint.url_validation handshake."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from hookline.errors import VerificationError
from ingest.schemes.zoom import ZoomVerifier
from ingest.signing import zoom_headers

SECRET = "test-only-zoom-secret-token"
OTHER_SECRET = "test-only-zoom-other-token"
T = 1767225600
BODY = b'{"event":"meeting.started","event_ts":1767225600000,"payload":{"object":{"id":"1"}}}'
VALIDATION = (
    b'{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1767225600000,'
    b'"event":"endpoint.url_validation"}'
)


def signed(secret: str = SECRET, body: bytes = BODY, timestamp: int = T) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    return {"x-zm-request-timestamp": str(timestamp), "x-zm-signature": f"v0={mac.hexdigest()}"}


def reason_of(
    verifier: ZoomVerifier, headers: dict[str, str], body: bytes, now: float = T
) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=now)
    except VerificationError as error:
        return error.reason
    return None


def encrypted_token(secret: str, plain_token: str) -> str:
    return hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()


def test_zoom_valid_signature_accepted():
    assert reason_of(ZoomVerifier([SECRET]), signed(), BODY) is None


def test_zoom_wrong_secret_rejected():
    assert reason_of(ZoomVerifier([SECRET]), signed(OTHER_SECRET), BODY) == (
        "no_matching_signature"
    )


def test_zoom_slack_header_names_not_accepted():
    headers = signed()
    slack_named = {
        "X-Slack-Request-Timestamp": headers["x-zm-request-timestamp"],
        "X-Slack-Signature": headers["x-zm-signature"],
    }

    assert reason_of(ZoomVerifier([SECRET]), slack_named, BODY) == "missing_header"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(T + 300, None, id="300s-old"),
        pytest.param(T + 301, "timestamp_outside_tolerance", id="301s-old"),
        pytest.param(T - 301, "timestamp_outside_tolerance", id="301s-ahead"),
    ],
)
def test_zoom_tolerance_symmetric(now, expected):
    assert reason_of(ZoomVerifier([SECRET]), signed(), BODY, now=now) == expected


def test_zoom_signing_helper_matches():
    assert zoom_headers(SECRET, BODY, T) == signed()


def test_zoom_url_validation_reply():
    verifier = ZoomVerifier([SECRET])

    handshake = verifier.handshake(signed(body=VALIDATION), VALIDATION)

    assert handshake is not None
    assert handshake.status == 200
    assert json.loads(handshake.body) == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": encrypted_token(SECRET, "qgg8vlvZRS6UYooatFL8Aw"),
    }


def test_zoom_url_validation_uses_matching_secret():
    # During a rotation the reply is keyed with the secret that signed the request.
    verifier = ZoomVerifier([OTHER_SECRET, SECRET])

    handshake = verifier.handshake(signed(SECRET, VALIDATION), VALIDATION)

    assert handshake is not None
    reply = json.loads(handshake.body)
    assert reply["encryptedToken"] == encrypted_token(SECRET, "qgg8vlvZRS6UYooatFL8Aw")
    assert reply["encryptedToken"] != encrypted_token(OTHER_SECRET, "qgg8vlvZRS6UYooatFL8Aw")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"event":"endpoint.url_validation","payload":{}}', id="no-token"),
        pytest.param(b'{"event":"endpoint.url_validation"}', id="no-payload"),
        pytest.param(
            b'{"event":"endpoint.url_validation","payload":{"plainToken":7}}', id="token-number"
        ),
        pytest.param(b'{"event":"endpoint.url_validation","payload":"plain"}', id="payload-string"),
    ],
)
def test_zoom_url_validation_malformed_400(body):
    handshake = ZoomVerifier([SECRET]).handshake(signed(body=body), body)

    assert handshake is not None
    assert handshake.status == 400
    assert json.loads(handshake.body)["error"] == "invalid_body"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(BODY, id="event"),
        pytest.param(b"\x80\x81", id="not-utf8"),
        pytest.param(b'{"event":', id="truncated-json"),
    ],
)
def test_zoom_events_are_not_handshakes(body):
    assert ZoomVerifier([SECRET]).handshake(signed(body=body), body) is None
