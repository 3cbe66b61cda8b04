"""Unit tests of the Linear verifier: body HMAC, then webhookTimestamp in the body."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hookline.errors import VerificationError
from ingest.schemes.linear import LinearVerifier
from ingest.signing import linear_headers

SECRET = "lin_wh_test_only_secret"
OTHER_SECRET = "lin_wh_test_only_other"
T = 1767225600


def event(timestamp_ms: object = T * 1000) -> bytes:
    stamp = timestamp_ms if isinstance(timestamp_ms, bytes) else str(timestamp_ms).encode()
    return b'{"action":"update","type":"Issue","webhookTimestamp":' + stamp + b',"data":{}}'


BODY = event()


def signed(secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    return {"Linear-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def failure(verifier: LinearVerifier, headers: dict[str, str], body: bytes, now: float = T):
    """Return (reason, status) of the rejection, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=now)
    except VerificationError as error:
        return error.reason, error.status
    return None


def test_linear_valid_signature_accepted():
    assert failure(LinearVerifier([SECRET]), signed(), BODY) is None


def test_linear_wrong_secret_rejected():
    assert failure(LinearVerifier([SECRET]), signed(OTHER_SECRET), BODY) == (
        "no_matching_signature",
        401,
    )


def test_linear_missing_header_rejected():
    assert failure(LinearVerifier([SECRET]), {}, BODY) == ("missing_header", 401)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(T + 60, None, id="60s-old"),
        pytest.param(T + 60.001, ("timestamp_outside_tolerance", 401), id="just-over-60s-old"),
        pytest.param(T - 60, None, id="60s-ahead"),
        pytest.param(T - 61, ("timestamp_outside_tolerance", 401), id="61s-ahead"),
    ],
)
def test_linear_tolerance_60s_symmetric(now, expected):
    assert failure(LinearVerifier([SECRET]), signed(), BODY, now=now) == expected


def test_linear_timestamp_milliseconds():
    # 1767225600250 ms is 0.25 s after T, but read as seconds it would be far in the future.
    body = event(T * 1000 + 250)

    assert failure(LinearVerifier([SECRET]), signed(body=body), body, now=T + 60.25) is None


def test_linear_float_timestamp_accepted():
    body = event(b"1767225600000.5")

    assert failure(LinearVerifier([SECRET]), signed(body=body), body) is None


def test_linear_tolerance_override():
    verifier = LinearVerifier([SECRET], tolerance_seconds=300)

    assert failure(verifier, signed(), BODY, now=T + 299) is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"action":"update","type":"Issue"}', id="no-timestamp"),
        pytest.param(event(b'"1767225600000"'), id="timestamp-string"),
        pytest.param(event(b"true"), id="timestamp-bool"),
        pytest.param(event(b"null"), id="timestamp-null"),
        pytest.param(b'{"webhookTimestamp":', id="truncated-json"),
        pytest.param(b"\xff\xfe\x80 not utf-8", id="not-utf8"),
        pytest.param(b"[1767225600000]", id="json-array"),
        pytest.param(b"", id="empty"),
    ],
)
def test_linear_signed_body_without_timestamp_400(body):
    assert failure(LinearVerifier([SECRET]), signed(body=body), body) == ("invalid_body", 400)


def test_linear_unsigned_bad_body_is_401():
    # The signature is checked first, so a forger learns nothing from body errors.
    body = b"\xff not json"

    assert failure(LinearVerifier([SECRET]), signed(OTHER_SECRET, body), body) == (
        "no_matching_signature",
        401,
    )


def test_linear_rotation_either_secret_accepted():
    verifier = LinearVerifier([OTHER_SECRET, SECRET])

    assert failure(verifier, signed(SECRET), BODY) is None
    assert failure(verifier, signed(OTHER_SECRET), BODY) is None


def test_linear_signing_helper_matches():
    assert linear_headers(SECRET, BODY) == signed()
