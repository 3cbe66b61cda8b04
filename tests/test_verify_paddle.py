"""Unit tests of the Paddle Billing verifier."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hookline.errors import VerificationError
from ingest.schemes.paddle import PaddleVerifier
from ingest.signing import paddle_headers

SECRET = "pdl_ntfset_test_only_secret"
OTHER_SECRET = "pdl_ntfset_test_only_other"
T = 1767225600
BODY = b'{"event_id":"evt_01test","event_type":"transaction.completed","data":{}}'


def h1(secret: str, body: bytes = BODY, timestamp: int = T) -> str:
    return hmac.new(secret.encode(), f"{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


def reason_of(
    verifier: PaddleVerifier, value: str, body: bytes = BODY, now: float = T
) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify({"Paddle-Signature": value}, body, now=now)
    except VerificationError as error:
        return error.reason
    return None


def test_paddle_valid_signature_accepted():
    assert reason_of(PaddleVerifier([SECRET]), f"ts={T};h1={h1(SECRET)}") is None


def test_paddle_wrong_secret_rejected():
    assert reason_of(PaddleVerifier([SECRET]), f"ts={T};h1={h1(OTHER_SECRET)}") == (
        "no_matching_signature"
    )


def test_paddle_any_h1_matches():
    value = f"ts={T};h1={h1(OTHER_SECRET)};h1={h1(SECRET)}"

    assert reason_of(PaddleVerifier([SECRET]), value) is None


def test_paddle_rotation_secret_list():
    verifier = PaddleVerifier([OTHER_SECRET, SECRET])

    assert reason_of(verifier, f"ts={T};h1={h1(SECRET)}") is None
    assert reason_of(verifier, f"ts={T};h1={h1(OTHER_SECRET)}") is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(T + 5, None, id="5s-old"),
        pytest.param(T + 6, "timestamp_outside_tolerance", id="6s-old"),
        pytest.param(T - 5, None, id="5s-ahead"),
        pytest.param(T - 6, "timestamp_outside_tolerance", id="6s-ahead"),
    ],
)
def test_paddle_default_tolerance_5s(now, expected):
    assert reason_of(PaddleVerifier([SECRET]), f"ts={T};h1={h1(SECRET)}", now=now) == expected


def test_paddle_tolerance_override():
    verifier = PaddleVerifier([SECRET], tolerance_seconds=60)

    assert reason_of(verifier, f"ts={T};h1={h1(SECRET)}", now=T + 60) is None
    assert reason_of(verifier, f"ts={T};h1={h1(SECRET)}", now=T + 61) == (
        "timestamp_outside_tolerance"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(f"h1={h1(SECRET)}", "malformed_header", id="no-ts"),
        pytest.param(f"ts={T};ts={T};h1={h1(SECRET)}", "malformed_header", id="two-ts"),
        pytest.param(f"ts=now;h1={h1(SECRET)}", "malformed_header", id="ts-not-digits"),
        pytest.param(f"ts={T}", "no_matching_signature", id="no-h1"),
        pytest.param(f"ts={T};h2={h1(SECRET)}", "no_matching_signature", id="unknown-version"),
        pytest.param(f"ts={T},h1={h1(SECRET)}", "malformed_header", id="comma-separator"),
    ],
)
def test_paddle_bad_header_rejected(value, expected):
    assert reason_of(PaddleVerifier([SECRET]), value) == expected


def test_paddle_spaces_around_entries_ignored():
    assert reason_of(PaddleVerifier([SECRET]), f" ts={T} ; h1={h1(SECRET)} ") is None


def test_paddle_missing_header_rejected():
    with pytest.raises(VerificationError) as caught:
        PaddleVerifier([SECRET]).verify({}, BODY, now=T)

    assert caught.value.reason == "missing_header"


def test_paddle_signing_helper_matches():
    assert paddle_headers(SECRET, BODY, T) == {"Paddle-Signature": f"ts={T};h1={h1(SECRET)}"}
