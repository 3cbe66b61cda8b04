"""Unit tests of the Intercom verifier (X-Hub-Signature with HMAC-SHA1)."""

from __future__ import annotations

import hashlib
import hmac

from hookline.errors import VerificationError
from ingest.schemes.intercom import IntercomVerifier
from ingest.signing import hub_sha1_headers

SECRET = "test-only-intercom-client-secret"
OTHER_SECRET = "test-only-intercom-other-secret"
NOW = 1767225600
BODY = b'{"type":"notification_event","id":"notif_1","topic":"conversation.user.created"}'


def sha1_header(secret: str, body: bytes = BODY) -> dict[str, str]:
    return {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def reason_of(verifier: IntercomVerifier, headers: dict[str, str], body: bytes) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=NOW)
    except VerificationError as error:
        return error.reason
    return None


def test_intercom_valid_signature_accepted():
    assert reason_of(IntercomVerifier([SECRET]), sha1_header(SECRET), BODY) is None


def test_intercom_wrong_secret_rejected():
    verifier = IntercomVerifier([SECRET])

    assert reason_of(verifier, sha1_header(OTHER_SECRET), BODY) == "no_matching_signature"


def test_intercom_tampered_body_rejected():
    verifier = IntercomVerifier([SECRET])

    assert reason_of(verifier, sha1_header(SECRET), BODY + b" ") == "no_matching_signature"


def test_intercom_sha256_signature_rejected():
    # Intercom signs with SHA-1, so a SHA-256 MAC with the sha1= prefix must fail.
    verifier = IntercomVerifier([SECRET])
    digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()

    assert reason_of(verifier, {"X-Hub-Signature": f"sha1={digest}"}, BODY) == (
        "no_matching_signature"
    )


def test_intercom_missing_header_rejected():
    verifier = IntercomVerifier([SECRET])
    sha256 = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()

    assert reason_of(verifier, {"X-Hub-Signature-256": f"sha256={sha256}"}, BODY) == (
        "missing_header"
    )


def test_intercom_without_prefix_malformed():
    verifier = IntercomVerifier([SECRET])
    bare = sha1_header(SECRET)["X-Hub-Signature"].removeprefix("sha1=")

    assert reason_of(verifier, {"X-Hub-Signature": bare}, BODY) == "malformed_header"


def test_intercom_rotation_either_secret_accepted():
    verifier = IntercomVerifier([OTHER_SECRET, SECRET])

    assert reason_of(verifier, sha1_header(SECRET), BODY) is None
    assert reason_of(verifier, sha1_header(OTHER_SECRET), BODY) is None


def test_intercom_non_utf8_body_verified_as_bytes():
    verifier = IntercomVerifier([SECRET])
    body = b"\x80\x81\xfe"

    assert reason_of(verifier, sha1_header(SECRET, body), body) is None


def test_intercom_signing_helper_matches():
    assert hub_sha1_headers(SECRET, BODY) == sha1_header(SECRET)
