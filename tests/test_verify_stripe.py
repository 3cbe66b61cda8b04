"""Unit tests of the Stripe verifier, including documented real-world cases."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.schemes import create_verifier
from ingest.schemes.stripe import StripeVerifier

SECRET = "whsec_test_only_stripe_secret_0001"
OTHER_SECRET = "whsec_test_only_stripe_secret_0002"
T = 1767225600
BODY = b'{\n  "id": "evt_test_1",\n  "object": "event",\n  "type": "charge.succeeded"\n}\n'


def v1(secret: str, body: bytes, timestamp: int | str) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str = SECRET, body: bytes = BODY, timestamp: int = T) -> dict[str, str]:
    return {"Stripe-Signature": f"t={timestamp},v1={v1(secret, body, timestamp)}"}


def reason_of(
    verifier: StripeVerifier, headers: dict[str, str], body: bytes, now: float
) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=now)
    except VerificationError as error:
        return error.reason
    return None


def test_stripe_valid_signature_accepted():
    verifier = StripeVerifier([SECRET])

    assert reason_of(verifier, signed_headers(), BODY, now=T + 5) is None


def test_stripe_wrong_secret_rejected():
    verifier = StripeVerifier([SECRET])

    reason = reason_of(verifier, signed_headers(secret=OTHER_SECRET), BODY, now=T)

    assert reason == "no_matching_signature"


def test_stripe_tampered_body_rejected():
    verifier = StripeVerifier([SECRET])
    tampered = BODY.replace(b"evt_test_1", b"evt_test_2")

    assert reason_of(verifier, signed_headers(), tampered, now=T) == "no_matching_signature"


def test_stripe_missing_header_rejected():
    verifier = StripeVerifier([SECRET])
    headers = {"Content-Type": "application/json"}

    assert reason_of(verifier, headers, BODY, now=T) == "missing_header"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="no-key-value-pairs"),
        pytest.param(f"v1={v1(SECRET, BODY, T)}", id="no-timestamp"),
        pytest.param(f"t=soon,v1={v1(SECRET, BODY, T)}", id="timestamp-not-a-number"),
        pytest.param(f"t=-{T},v1={v1(SECRET, BODY, T)}", id="negative-timestamp"),
        pytest.param(f"t=1_767_225_600,v1={v1(SECRET, BODY, T)}", id="underscored-timestamp"),
        pytest.param(f"t={T},t={T},v1={v1(SECRET, BODY, T)}", id="two-timestamps"),
    ],
)
def test_stripe_malformed_header_rejected(value):
    verifier = StripeVerifier([SECRET])

    assert reason_of(verifier, {"Stripe-Signature": value}, BODY, now=T) == "malformed_header"


def test_stripe_header_without_v1_rejected():
    verifier = StripeVerifier([SECRET])
    headers = {"Stripe-Signature": f"t={T},v0={v1(SECRET, BODY, T)}"}

    assert reason_of(verifier, headers, BODY, now=T) == "no_matching_signature"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(T + 300, None, id="300s-old-accepted"),
        pytest.param(T + 301, "timestamp_outside_tolerance", id="301s-old-rejected"),
        pytest.param(T - 300, None, id="300s-ahead-accepted"),
        pytest.param(T - 301, "timestamp_outside_tolerance", id="301s-ahead-rejected"),
        pytest.param(T + 86400, "timestamp_outside_tolerance", id="one-day-old"),
    ],
)
def test_stripe_tolerance_window(now, expected):
    verifier = StripeVerifier([SECRET])

    assert reason_of(verifier, signed_headers(), BODY, now=now) == expected


def test_stripe_tolerance_from_source_config():
    source = SourceConfig(name="shop", scheme="stripe", secrets=(SECRET,), tolerance_seconds=10)
    verifier = create_verifier(source)

    assert reason_of(verifier, signed_headers(), BODY, now=T + 10) is None
    assert reason_of(verifier, signed_headers(), BODY, now=T + 11) == "timestamp_outside_tolerance"


def test_stripe_forged_signature_reported_before_stale_timestamp():
    verifier = StripeVerifier([SECRET])
    headers = signed_headers(secret=OTHER_SECRET)

    assert reason_of(verifier, headers, BODY, now=T + 3600) == "no_matching_signature"


def test_stripe_rotation_second_secret_accepted():
    verifier = StripeVerifier([OTHER_SECRET, SECRET])

    assert reason_of(verifier, signed_headers(secret=SECRET), BODY, now=T) is None


def test_stripe_rotation_second_v1_entry_accepted():
    verifier = StripeVerifier([SECRET])
    value = f"t={T},v1={v1(OTHER_SECRET, BODY, T)},v1={v1(SECRET, BODY, T)}"

    assert reason_of(verifier, {"Stripe-Signature": value}, BODY, now=T) is None


def test_stripe_unknown_keys_ignored():
    verifier = StripeVerifier([SECRET])
    value = f"t={T},v0=00ff,v9=whatever,flag,v1={v1(SECRET, BODY, T)}"

    assert reason_of(verifier, {"Stripe-Signature": value}, BODY, now=T) is None


@pytest.mark.parametrize("name", ["stripe-signature", "STRIPE-SIGNATURE", "Stripe-Signature"])
def test_stripe_header_name_case_insensitive(name):
    verifier = StripeVerifier([SECRET])
    headers = {name: signed_headers()["Stripe-Signature"]}

    assert reason_of(verifier, headers, BODY, now=T) is None


def test_stripe_non_utf8_body_verified_as_bytes():
    verifier = StripeVerifier([SECRET])
    body = b"\xff\xfe\x00\x80not utf-8\xc3"

    assert reason_of(verifier, signed_headers(body=body), body, now=T) is None
    assert reason_of(verifier, signed_headers(body=body), body + b"!", now=T) == (
        "no_matching_signature"
    )


def test_stripe_non_ascii_signature_rejected():
    verifier = StripeVerifier([SECRET])
    headers = {"Stripe-Signature": f"t={T},v1=\u00e9\u00e9\u00e9"}

    assert reason_of(verifier, headers, BODY, now=T) == "no_matching_signature"


def test_stripe_secret_not_base64_decoded():
    # Svix-style key handling (base64-decoding after whsec_) must not verify.
    decoded_key = base64.b64decode("c2VjcmV0LWtleS1ieXRlcw==")
    secret = "whsec_c2VjcmV0LWtleS1ieXRlcw=="
    signature = hmac.new(decoded_key, f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    verifier = StripeVerifier([secret])
    headers = {"Stripe-Signature": f"t={T},v1={signature}"}

    assert reason_of(verifier, headers, BODY, now=T) == "no_matching_signature"


def test_stripe_rejection_detail_reveals_no_secret():
    verifier = StripeVerifier([SECRET])
    headers = signed_headers(secret=OTHER_SECRET)

    with pytest.raises(VerificationError) as caught:
        verifier.verify(headers, BODY, now=T)

    assert SECRET not in caught.value.detail
    assert v1(SECRET, BODY, T) not in caught.value.detail
    assert v1(OTHER_SECRET, BODY, T) not in caught.value.detail


def test_stripe_without_secret_is_config_error():
    source = SourceConfig(name="shop", scheme="stripe")

    with pytest.raises(ConfigError, match="shop"):
        create_verifier(source)


# Documented cases. Header values, bodies, secrets and clocks are copied from
# the case files. The signatures were cross-checked with stripe-python 16.1.0.

A02_BODY = (
    b'{\n  "id": "evt_corpus_A02",\n  "object": "event",\n  "api_version": "2024-06-20",\n'
    b'  "created": 1767225598,\n  "data": {\n    "object": {\n      "id": "pi_corpus_A02",\n'
    b'      "object": "payment_intent",\n      "amount": 2000,\n      "currency": "usd",\n'
    b'      "status": "succeeded"\n    }\n  },\n  "livemode": false,\n  "pending_webhooks": 1,\n'
    b'  "type": "payment_intent.succeeded"\n}\n'
)
B01_BODY = (
    b'{\n  "id": "evt_corpus_B01",\n  "object": "event",\n  "created": 1767225597,\n'
    b'  "data": {\n    "object": {\n      "id": "cs_corpus_B01",\n'
    b'      "object": "checkout.session",\n      "amount_total": 4999,\n'
    b'      "customer_details": {\n        "email": "jane.roe@example.com",\n'
    b'        "name": "Jane Roe"\n      }\n    }\n  },\n  "type": "checkout.session.completed"\n}\n'
)
B01_RESERIALISED = (
    b'{"id":"evt_corpus_B01","object":"event","created":1767225597,"data":{"object":'
    b'{"id":"cs_corpus_B01","object":"checkout.session","amount_total":4999,'
    b'"customer_details":{"email":"jane.roe@example.com","name":"Jane Roe"}}},'
    b'"type":"checkout.session.completed"}'
)
B11_BODY = (
    b'{\n  "id": "evt_corpus_B11",\n  "object": "event",\n  "type": "invoice.paid",\n'
    b'  "created": 1767225600,\n  "data": {\n    "object": {\n      "id": "in_corpus_B11",\n'
    b'      "object": "invoice",\n      "amount_paid": 1500\n    }\n  }\n}\n'
)
B12_BODY = (
    b'{\n  "id": "evt_corpus_B12",\n  "object": "event",\n  "type": "charge.refunded",\n'
    b'  "created": 1767225600\n}\n'
)
B24_BODY = (
    b'{\n  "id": "evt_corpus_B24",\n  "object": "event",\n  "type": "invoice.created",\n'
    b'  "created": 1767225600\n}\n'
)
CORPUS_SECRET = "whsec_corpusOnlyNotARealStripeSecret0001"

CORPUS_CASES = [
    pytest.param(
        {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": (
                "t=1767225600,v1=8808eb7ba7268cee12ddd9a3c673de4c624611636d9f1d1237e8a55f5f29ae4e"
            ),
        },
        A02_BODY,
        CORPUS_SECRET,
        1767225630,
        None,
        id="A02-constructed-vector",
    ),
    pytest.param(
        {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": (
                "t=1767225600,v1=d333d4476785aa8d2c0edb507afe33b57da4bea5f843726ed0e0d6dc78c25f33"
            ),
        },
        B01_BODY,
        CORPUS_SECRET,
        1767225605,
        None,
        id="B01-raw-pretty-printed-body",
    ),
    pytest.param(
        {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": (
                "t=1767225600,v1=d333d4476785aa8d2c0edb507afe33b57da4bea5f843726ed0e0d6dc78c25f33"
            ),
        },
        B01_RESERIALISED,
        CORPUS_SECRET,
        1767225605,
        "no_matching_signature",
        id="B01-reserialised-body-rejected",
    ),
    pytest.param(
        {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": (
                "t=1767225600,"
                "v1=d97979a0ae785cb199ac5f1d002caa0b571669bef599abc3da6103264df83d95,"
                "v1=a4e9a2285d53ec047c0a4912c8ac6f05aa918879c070d30fd4b6ad306a735f90,"
                "v0=abababababababababababababababababababababababababababababababab"
            ),
        },
        B11_BODY,
        "whsec_corpusNewSecretAfterRoll000002",
        1767225612,
        None,
        id="B11-rolling-secret-second-v1",
    ),
    pytest.param(
        {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": (
                "t=1767225600,v1=f7c2736ae88d67099886bed714f41b8f161ba69ce4c52008ffc42e277d78bbb5"
            ),
        },
        B12_BODY,
        CORPUS_SECRET,
        1767226020,
        "timestamp_outside_tolerance",
        id="B12-timestamp-420s-old",
    ),
    pytest.param(
        {
            "Content-Type": "application/json; charset=utf-8",
            "Via": "1.1 abcdef.cloudfront.net (CloudFront)",
            "X-Amz-Cf-Id": "corpusCfId==",
        },
        B24_BODY,
        CORPUS_SECRET,
        1767225600,
        "missing_header",
        id="B24-header-stripped-by-cdn",
    ),
]


@pytest.mark.parametrize(("headers", "body", "secret", "now", "expected"), CORPUS_CASES)
def test_stripe_documented_case(headers, body, secret, now, expected):
    verifier = StripeVerifier([secret])

    assert reason_of(verifier, headers, body, now=now) == expected


def test_stripe_documented_bodies_intact():
    # SHA-256 of each body as published with its case, to catch a copy error.
    expected = {
        "A02": "83267df0543f0597f778426e17ecff1c5fff78c9be0da73f5e3fcc7d879a73dc",
        "B01": "48288d22f45bd019116f841f688a03d6bb64711a2c2630d1bfd0b1924fe962ae",
        "B11": "fdff37683b105d77621c6d01f3e243b1c3bba32b00005aa96b98477cf4f5ee02",
        "B12": "7204efe74b9dbcd44d9ed375271041d13bd79eeebb405d188a49cc1014b8e1c1",
        "B24": "04239d605d8addd14f8820497ecd6e45deaf303669b1cbec1e5236457d591589",
    }
    bodies = {"A02": A02_BODY, "B01": B01_BODY, "B11": B11_BODY, "B12": B12_BODY, "B24": B24_BODY}

    for case, body in bodies.items():
        assert hashlib.sha256(body).hexdigest() == expected[case], case
