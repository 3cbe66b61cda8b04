"""Unit tests of the Standard Webhooks verifier, Svix-branded headers included."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.schemes import create_verifier
from ingest.schemes.standard_webhooks import StandardWebhooksVerifier

KEY = b"test-only-standard-webhooks-key!"
OTHER_KEY = b"another-test-only-key-of-32-byte"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(OTHER_KEY).decode()
MESSAGE_ID = "msg_test_2kYF3q"
T = 1767225600
BODY = b'{"type":"invoice.paid","timestamp":"2026-01-01T00:00:00Z","data":{"id":"inv_1"}}'


def v1(key: bytes, body: bytes = BODY, message_id: str = MESSAGE_ID, timestamp: int = T) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    key: bytes = KEY, body: bytes = BODY, timestamp: int = T, prefix: str = "webhook"
) -> dict[str, str]:
    return {
        f"{prefix}-id": MESSAGE_ID,
        f"{prefix}-timestamp": str(timestamp),
        f"{prefix}-signature": v1(key, body, timestamp=timestamp),
    }


def reason_of(
    verifier: StandardWebhooksVerifier, headers: dict[str, str], body: bytes, now: float
) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=now)
    except VerificationError as error:
        return error.reason
    return None


def test_standard_valid_signature_accepted():
    verifier = StandardWebhooksVerifier([SECRET])

    assert reason_of(verifier, signed_headers(), BODY, now=T) is None


def test_standard_secret_without_prefix_accepted():
    verifier = StandardWebhooksVerifier([SECRET.removeprefix("whsec_")])

    assert reason_of(verifier, signed_headers(), BODY, now=T) is None


def test_standard_wrong_secret_rejected():
    verifier = StandardWebhooksVerifier([SECRET])

    assert reason_of(verifier, signed_headers(key=OTHER_KEY), BODY, now=T) == (
        "no_matching_signature"
    )


def test_standard_tampered_body_rejected():
    verifier = StandardWebhooksVerifier([SECRET])

    assert reason_of(verifier, signed_headers(), BODY + b" ", now=T) == "no_matching_signature"


def test_standard_tampered_message_id_rejected():
    verifier = StandardWebhooksVerifier([SECRET])
    headers = signed_headers() | {"webhook-id": "msg_other"}

    assert reason_of(verifier, headers, BODY, now=T) == "no_matching_signature"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_missing_header_rejected(missing):
    verifier = StandardWebhooksVerifier([SECRET])
    headers = signed_headers()
    del headers[missing]

    assert reason_of(verifier, headers, BODY, now=T) == "missing_header"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("webhook-timestamp", "yesterday", id="timestamp-not-a-number"),
        pytest.param("webhook-timestamp", "1767225600.5", id="fractional-timestamp"),
        pytest.param("webhook-timestamp", "", id="empty-timestamp"),
        pytest.param("webhook-signature", "", id="empty-signature"),
        pytest.param("webhook-signature", "garbage", id="entry-without-version"),
        pytest.param("webhook-signature", "v1, ,v1", id="entries-without-signature"),
    ],
)
def test_standard_malformed_header_rejected(name, value):
    verifier = StandardWebhooksVerifier([SECRET])
    headers = signed_headers() | {name: value}

    assert reason_of(verifier, headers, BODY, now=T) == "malformed_header"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(T + 300, None, id="300s-old-accepted"),
        pytest.param(T + 301, "timestamp_outside_tolerance", id="301s-old-rejected"),
        pytest.param(T - 300, None, id="300s-ahead-accepted"),
        pytest.param(T - 301, "timestamp_outside_tolerance", id="301s-ahead-rejected"),
    ],
)
def test_standard_tolerance_window(now, expected):
    verifier = StandardWebhooksVerifier([SECRET])

    assert reason_of(verifier, signed_headers(), BODY, now=now) == expected


def test_standard_rotation_second_secret_accepted():
    verifier = StandardWebhooksVerifier([OTHER_SECRET, SECRET])

    assert reason_of(verifier, signed_headers(key=KEY), BODY, now=T) is None


def test_standard_rotation_second_entry_accepted():
    verifier = StandardWebhooksVerifier([SECRET])
    headers = signed_headers() | {"webhook-signature": f"{v1(OTHER_KEY)} {v1(KEY)}"}

    assert reason_of(verifier, headers, BODY, now=T) is None


def test_standard_unknown_versions_ignored():
    verifier = StandardWebhooksVerifier([SECRET])
    matching = v1(KEY).removeprefix("v1,")
    # The right MAC under an unknown version label must not count as v1.
    headers = signed_headers() | {"webhook-signature": f"v1a,{matching} v2,{matching}"}

    assert reason_of(verifier, headers, BODY, now=T) == "no_matching_signature"


@pytest.mark.parametrize(
    "prefix", ["webhook", "WEBHOOK", "Webhook", "svix", "SVIX"], ids=lambda prefix: prefix
)
def test_standard_header_name_case_insensitive(prefix):
    verifier = StandardWebhooksVerifier([SECRET])

    assert reason_of(verifier, signed_headers(prefix=prefix), BODY, now=T) is None


def test_standard_non_utf8_body_verified_as_bytes():
    verifier = StandardWebhooksVerifier([SECRET])
    body = b"\xc3\x28\xa0\xa1\xff"

    assert reason_of(verifier, signed_headers(body=body), body, now=T) is None
    assert reason_of(verifier, signed_headers(body=body), body[:-1], now=T) == (
        "no_matching_signature"
    )


def test_standard_non_ascii_signature_rejected():
    verifier = StandardWebhooksVerifier([SECRET])
    headers = signed_headers() | {"webhook-signature": "v1,\u00e4\u00e4\u00e4="}

    assert reason_of(verifier, headers, BODY, now=T) == "no_matching_signature"


def test_standard_invalid_base64_secret_is_config_error():
    source = SourceConfig(name="billing", scheme="standard-webhooks", secrets=("whsec_not*base64",))

    with pytest.raises(ConfigError, match="billing"):
        create_verifier(source)


def test_standard_rejection_detail_reveals_no_secret():
    verifier = StandardWebhooksVerifier([SECRET])

    with pytest.raises(VerificationError) as caught:
        verifier.verify(signed_headers(key=OTHER_KEY), BODY, now=T)

    assert SECRET not in caught.value.detail
    assert v1(KEY) not in caught.value.detail


# Documented cases, with header values, bodies, secrets and clocks copied from
# the case files. A05 is the signing vector of the Standard Webhooks reference
# libraries; A07 puts it in Svix-branded headers among decoy entries.

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_BODY = b'{"test": 2432232314}'
DECOY = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
VECTOR_SIGNATURE = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

CORPUS_CASES = [
    pytest.param(
        {
            "Content-Type": "application/json",
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": f"v1,{VECTOR_SIGNATURE}",
        },
        VECTOR_BODY,
        VECTOR_SECRET,
        1614265340,
        None,
        id="A05-library-vector",
    ),
    pytest.param(
        {
            "Content-Type": "application/json",
            "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "svix-timestamp": "1614265330",
            "svix-signature": f"v1,{DECOY} v2,{DECOY} v1,{VECTOR_SIGNATURE} v1,{DECOY}",
        },
        VECTOR_BODY,
        VECTOR_SECRET,
        1614265270,
        None,
        id="A07-svix-branded-multi-signature",
    ),
    pytest.param(
        {
            "Content-Type": "application/json",
            "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "svix-timestamp": "1614265330",
            "svix-signature": f"v1,{DECOY} v2,{DECOY} v1,{VECTOR_SIGNATURE} v1,{DECOY}",
        },
        VECTOR_BODY,
        VECTOR_SECRET,
        1614265330 + 301,
        "timestamp_outside_tolerance",
        id="A07-replayed-after-window",
    ),
    pytest.param(
        {
            "webhook-id": "msg_corpusB21empty",
            "webhook-timestamp": "1767225600",
            "webhook-signature": "v1,KJtCdRfmrLcKnAOoBSI43KhHFOxArbsp26VDXhr0mEY=",
        },
        b"",
        "whsec_s1QDL/b14CNcyx0Y+tD9K8Le41elz3QosxqwE39kGFg=",
        1767225601,
        None,
        id="B21-empty-body",
    ),
]


@pytest.mark.parametrize(("headers", "body", "secret", "now", "expected"), CORPUS_CASES)
def test_standard_documented_case(headers, body, secret, now, expected):
    verifier = StandardWebhooksVerifier([secret])

    assert reason_of(verifier, headers, body, now=now) == expected


def test_standard_vector_key_is_decoded_secret():
    # The reference vector's key is the 24-byte base64 decoding of the secret.
    key = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))
    signed = b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + VECTOR_BODY

    assert len(key) == 24
    assert base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode() == (
        VECTOR_SIGNATURE
    )
