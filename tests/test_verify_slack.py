"""Unit tests of the Slack verifier and its url_verification handshake."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from hookline.config import SourceConfig
from hookline.errors import VerificationError
from ingest.schemes import create_verifier
from ingest.schemes.slack import SlackVerifier
from ingest.signing import slack_headers

SECRET = "test-only-slack-signing-secret"
OTHER_SECRET = "test-only-slack-other-secret"
T = 1767225600
BODY = b'{"type":"event_callback","event_id":"Ev01TEST","event":{"type":"app_mention"}}'
FORM_BODY = b"token=abc&command=%2Fdeploy&text=api+production+--force&user_name=jdoe"


def signed(secret: str = SECRET, body: bytes = BODY, timestamp: int = T) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={mac.hexdigest()}",
    }


def reason_of(
    verifier: SlackVerifier, headers: dict[str, str], body: bytes, now: float = T
) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=now)
    except VerificationError as error:
        return error.reason
    return None


def test_slack_valid_signature_accepted():
    assert reason_of(SlackVerifier([SECRET]), signed(), BODY) is None


def test_slack_wrong_secret_rejected():
    assert reason_of(SlackVerifier([SECRET]), signed(OTHER_SECRET), BODY) == (
        "no_matching_signature"
    )


def test_slack_form_body_verified_raw():
    # Slash commands arrive form-encoded with '+' for spaces, and the raw bytes are signed.
    verifier = SlackVerifier([SECRET])
    headers = signed(body=FORM_BODY)
    reencoded = FORM_BODY.replace(b"+", b"%20")

    assert reason_of(verifier, headers, FORM_BODY) is None
    assert reason_of(verifier, headers, reencoded) == "no_matching_signature"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(T + 300, None, id="300s-old"),
        pytest.param(T + 301, "timestamp_outside_tolerance", id="301s-old"),
        pytest.param(T - 300, None, id="300s-ahead"),
        pytest.param(T - 301, "timestamp_outside_tolerance", id="301s-ahead"),
    ],
)
def test_slack_tolerance_symmetric(now, expected):
    assert reason_of(SlackVerifier([SECRET]), signed(), BODY, now=now) == expected


def test_slack_tolerance_override():
    verifier = SlackVerifier([SECRET], tolerance_seconds=30)

    assert reason_of(verifier, signed(), BODY, now=T + 30) is None
    assert reason_of(verifier, signed(), BODY, now=T + 31) == "timestamp_outside_tolerance"


def test_slack_source_tolerance_used():
    source = SourceConfig(name="chat", scheme="slack", secrets=(SECRET,), tolerance_seconds=10)
    verifier = create_verifier(source)

    assert verifier.tolerance_seconds == 10
    assert reason_of(verifier, signed(), BODY, now=T + 11) == "timestamp_outside_tolerance"


def test_slack_signature_checked_before_timestamp():
    # A forgery gets no_matching_signature even with a stale timestamp.
    headers = signed(OTHER_SECRET, timestamp=T - 3600)

    assert reason_of(SlackVerifier([SECRET]), headers, BODY) == "no_matching_signature"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"X-Slack-Signature": "v0=00"}, "missing_header", id="no-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": str(T)}, "missing_header", id="no-signature"),
        pytest.param(
            {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
            "malformed_header",
            id="timestamp-not-digits",
        ),
        pytest.param(
            {"X-Slack-Request-Timestamp": str(T), "X-Slack-Signature": "v1=00"},
            "malformed_header",
            id="wrong-version",
        ),
    ],
)
def test_slack_bad_headers_rejected(headers, expected):
    assert reason_of(SlackVerifier([SECRET]), headers, BODY) == expected


def test_slack_timestamp_change_breaks_signature():
    headers = signed() | {"X-Slack-Request-Timestamp": str(T + 1)}

    assert reason_of(SlackVerifier([SECRET]), headers, BODY) == "no_matching_signature"


def test_slack_rotation_either_secret_accepted():
    verifier = SlackVerifier([OTHER_SECRET, SECRET])

    assert reason_of(verifier, signed(SECRET), BODY) is None
    assert reason_of(verifier, signed(OTHER_SECRET), BODY) is None


def test_slack_non_utf8_body_verified_as_bytes():
    body = b"\xff\xfe\x80"

    assert reason_of(SlackVerifier([SECRET]), signed(body=body), body) is None


def test_slack_signing_helper_matches():
    assert slack_headers(SECRET, BODY, T) == signed()


def test_slack_url_verification_handshake():
    body = (
        b'{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",'
        b'"type":"url_verification"}'
    )
    verifier = SlackVerifier([SECRET])

    handshake = verifier.handshake({}, body)

    assert handshake is not None
    assert handshake.status == 200
    assert handshake.content_type == "application/json"
    assert json.loads(handshake.body) == {
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    }


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(BODY, id="event-callback"),
        pytest.param(FORM_BODY, id="form"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b'{"type":"url_verification"', id="truncated-json"),
        pytest.param(b'["url_verification"]', id="json-array"),
        pytest.param(b"", id="empty"),
    ],
)
def test_slack_events_are_not_handshakes(body):
    assert SlackVerifier([SECRET]).handshake({}, body) is None


def test_slack_url_verification_without_challenge_400():
    handshake = SlackVerifier([SECRET]).handshake({}, b'{"type":"url_verification"}')

    assert handshake is not None
    assert handshake.status == 400
    assert json.loads(handshake.body)["error"] == "invalid_body"
