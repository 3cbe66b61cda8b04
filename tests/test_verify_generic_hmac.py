"""Unit tests of the generic HMAC verifier and its option checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.schemes import create_verifier
from ingest.schemes.generic_hmac import GenericHmacVerifier
from ingest.signing import generic_hmac_headers

SECRET = "test-only-generic-secret"
OTHER_SECRET = "test-only-generic-other"
T = 1767225600
BODY = b'{"id":"evt_1","type":"order.shipped"}'
TIMESTAMPED = {
    "header": "X-Signature",
    "prefix": "v1=",
    "signed_content": "{timestamp}.{body}",
    "timestamp_header": "X-Timestamp",
}


def mac(secret: str, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).digest()


def reason_of(
    verifier: GenericHmacVerifier, headers: dict[str, str], body: bytes = BODY, now: float = T
) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=now)
    except VerificationError as error:
        return error.reason
    return None


def make(options: dict[str, Any], *secrets: str, tolerance: int | None = None):
    return GenericHmacVerifier(list(secrets or [SECRET]), tolerance, options)


def test_generic_default_hex_sha256_of_body():
    verifier = make({"header": "X-Signature"})

    assert reason_of(verifier, {"X-Signature": mac(SECRET, BODY).hex()}) is None
    assert reason_of(verifier, {"X-Signature": mac(OTHER_SECRET, BODY).hex()}) == (
        "no_matching_signature"
    )


def test_generic_hex_case_insensitive():
    verifier = make({"header": "X-Signature"})

    assert reason_of(verifier, {"X-Signature": mac(SECRET, BODY).hex().upper()}) is None


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_generic_algorithm_and_encoding(algorithm, encoding):
    verifier = make(
        {"header": "X-Sig", "algorithm": algorithm, "encoding": encoding, "prefix": "sig="}
    )
    digest = mac(SECRET, BODY, algorithm)
    text = base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()

    assert reason_of(verifier, {"X-Sig": f"sig={text}"}) is None
    assert reason_of(verifier, {"X-Sig": text}) == "malformed_header"


def test_generic_other_algorithm_digest_rejected():
    verifier = make({"header": "X-Sig", "algorithm": "sha512"})

    assert reason_of(verifier, {"X-Sig": mac(SECRET, BODY, "sha256").hex()}) == (
        "no_matching_signature"
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("zz" * 32, id="not-hex"),
        pytest.param("abc", id="odd-length"),
        pytest.param("\u00e9\u00e9", id="non-ascii"),
    ],
)
def test_generic_undecodable_hex_malformed(value):
    assert reason_of(make({"header": "X-Sig"}), {"X-Sig": value}) == "malformed_header"


def test_generic_undecodable_base64_malformed():
    verifier = make({"header": "X-Sig", "encoding": "base64"})

    assert reason_of(verifier, {"X-Sig": "not base64!"}) == "malformed_header"


def test_generic_timestamp_template():
    verifier = make(TIMESTAMPED)
    signature = mac(SECRET, f"{T}.".encode() + BODY).hex()
    headers = {"X-Signature": f"v1={signature}", "X-Timestamp": str(T)}

    assert reason_of(verifier, headers) is None
    assert reason_of(verifier, headers | {"X-Timestamp": str(T + 1)}) == "no_matching_signature"
    assert reason_of(verifier, {"X-Signature": f"v1={mac(SECRET, BODY).hex()}"}) == (
        "missing_header"
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(T + 300, None, id="300s-old"),
        pytest.param(T + 301, "timestamp_outside_tolerance", id="301s-old"),
        pytest.param(T - 301, "timestamp_outside_tolerance", id="301s-ahead"),
    ],
)
def test_generic_timestamp_default_tolerance(now, expected):
    headers = generic_hmac_headers(SECRET, BODY, TIMESTAMPED, T)

    assert reason_of(make(TIMESTAMPED), headers, now=now) == expected


def test_generic_timestamp_tolerance_override():
    headers = generic_hmac_headers(SECRET, BODY, TIMESTAMPED, T)

    assert reason_of(make(TIMESTAMPED, tolerance=10), headers, now=T + 11) == (
        "timestamp_outside_tolerance"
    )


def test_generic_no_timestamp_ignores_clock():
    verifier = make({"header": "X-Signature"}, tolerance=5)

    assert verifier.tolerance_seconds is None
    assert reason_of(verifier, {"X-Signature": mac(SECRET, BODY).hex()}, now=0) is None


def test_generic_literal_braces_in_template():
    options = {"header": "X-Sig", "signed_content": "{{v2}}|{body}"}
    signature = mac(SECRET, b"{v2}|" + BODY).hex()

    assert reason_of(make(options), {"X-Sig": signature}) is None


def test_generic_rotation_either_secret_accepted():
    verifier = make({"header": "X-Sig"}, OTHER_SECRET, SECRET)

    assert reason_of(verifier, {"X-Sig": mac(SECRET, BODY).hex()}) is None
    assert reason_of(verifier, {"X-Sig": mac(OTHER_SECRET, BODY).hex()}) is None


def test_generic_signing_helper_matches_independent_mac():
    headers = generic_hmac_headers(SECRET, BODY, TIMESTAMPED, T)

    assert headers == {
        "X-Signature": "v1=" + mac(SECRET, f"{T}.".encode() + BODY).hex(),
        "X-Timestamp": str(T),
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({}, "header", id="no-header"),
        pytest.param({"header": "  "}, "header", id="blank-header"),
        pytest.param({"header": "X", "algorithm": "md5"}, "algorithm", id="md5"),
        pytest.param({"header": "X", "encoding": "base32"}, "encoding", id="base32"),
        pytest.param({"header": "X", "signed_content": "{timestamp}"}, "body", id="no-body"),
        pytest.param({"header": "X", "signed_content": "{body}{body}"}, "body", id="body-twice"),
        pytest.param({"header": "X", "signed_content": "{id}.{body}"}, "fields", id="unknown"),
        pytest.param({"header": "X", "signed_content": "{body!r}"}, "fields", id="conversion"),
        pytest.param({"header": "X", "signed_content": "{body"}, "invalid", id="unbalanced"),
        pytest.param(
            {"header": "X", "signed_content": "{timestamp}.{body}"},
            "timestamp_header",
            id="timestamp-without-header",
        ),
        pytest.param(
            {"header": "X", "timestamp_header": "X-Ts"}, "unsigned", id="header-without-field"
        ),
        pytest.param({"header": "X", "prefx": "v1="}, "prefx", id="misspelt-option"),
        pytest.param({"header": 5}, "string", id="header-not-string"),
    ],
)
def test_generic_invalid_options_config_error(options, message):
    source = SourceConfig(name="acme", scheme="generic-hmac", secrets=(SECRET,), options=options)

    with pytest.raises(ConfigError, match=message):
        create_verifier(source)
