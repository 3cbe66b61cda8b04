"""Unit tests of the Typeform verifier (sha256= prefix, base64 MAC)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from hookline.errors import VerificationError
from ingest.schemes.typeform import TypeformVerifier
from ingest.signing import typeform_headers

SECRET = "test-only-typeform-secret"
OTHER_SECRET = "test-only-typeform-other"
NOW = 1767225600
BODY = b'{"event_id":"01TEST","event_type":"form_response","form_response":{"form_id":"x"}}'


def base64_mac(secret: str, body: bytes = BODY) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def reason_of(verifier: TypeformVerifier, headers: dict[str, str], body: bytes) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=NOW)
    except VerificationError as error:
        return error.reason
    return None


def test_typeform_valid_signature_accepted():
    headers = {"Typeform-Signature": f"sha256={base64_mac(SECRET)}"}

    assert reason_of(TypeformVerifier([SECRET]), headers, BODY) is None


def test_typeform_wrong_secret_rejected():
    headers = {"Typeform-Signature": f"sha256={base64_mac(OTHER_SECRET)}"}

    assert reason_of(TypeformVerifier([SECRET]), headers, BODY) == "no_matching_signature"


def test_typeform_hex_mac_rejected():
    # GitHub-style hex after sha256= is not what Typeform sends.
    hex_mac = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()

    assert reason_of(
        TypeformVerifier([SECRET]), {"Typeform-Signature": f"sha256={hex_mac}"}, BODY
    ) == ("no_matching_signature")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(base64_mac(SECRET), id="no-prefix"),
        pytest.param(f"sha1={base64_mac(SECRET)}", id="wrong-prefix"),
        pytest.param("", id="empty"),
    ],
)
def test_typeform_malformed_header_rejected(value):
    assert reason_of(TypeformVerifier([SECRET]), {"Typeform-Signature": value}, BODY) == (
        "malformed_header"
    )


def test_typeform_missing_header_rejected():
    assert reason_of(TypeformVerifier([SECRET]), {}, BODY) == "missing_header"


def test_typeform_rotation_either_secret_accepted():
    verifier = TypeformVerifier([OTHER_SECRET, SECRET])

    for secret in (SECRET, OTHER_SECRET):
        headers = {"Typeform-Signature": f"sha256={base64_mac(secret)}"}
        assert reason_of(verifier, headers, BODY) is None, secret


def test_typeform_tampered_body_rejected():
    headers = {"Typeform-Signature": f"sha256={base64_mac(SECRET)}"}

    assert reason_of(TypeformVerifier([SECRET]), headers, BODY[:-1]) == "no_matching_signature"


def test_typeform_signing_helper_matches():
    assert typeform_headers(SECRET, BODY) == {"Typeform-Signature": f"sha256={base64_mac(SECRET)}"}
