"""Unit tests of the SendGrid Event Webhook ECDSA verifier, with the SDKs' vectors."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.samples import build_sample
from ingest.schemes import create_verifier
from ingest.schemes.sendgrid import SendGridVerifier
from ingest.signing import sendgrid_headers

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
T = 1767225600
BODY = b'[{"email":"a@example.com","event":"delivered","sg_event_id":"e1","timestamp":1}]\r\n'

# Fixed private scalars, so every run uses the same test-only key pairs.
KEY = ec.derive_private_key(0x5EED0001, ec.SECP256R1())
OTHER_KEY = ec.derive_private_key(0x5EED0002, ec.SECP256R1())


def public_base64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def private_base64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return base64.b64encode(der).decode()


def sign(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int | str = T) -> dict[str, str]:
    signature = key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        TIMESTAMP_HEADER: str(timestamp),
    }


def reason_of(
    verifier: SendGridVerifier, headers: dict[str, str], body: bytes, now: float = T
) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=now)
    except VerificationError as error:
        assert error.status == 401
        return error.reason
    return None


def test_sendgrid_valid_signature_accepted():
    verifier = SendGridVerifier([public_base64(KEY)])

    assert reason_of(verifier, sign(KEY, BODY), BODY) is None


def test_sendgrid_wrong_key_rejected():
    verifier = SendGridVerifier([public_base64(KEY)])

    assert reason_of(verifier, sign(OTHER_KEY, BODY), BODY) == "no_matching_signature"


def test_sendgrid_tampered_body_rejected():
    verifier = SendGridVerifier([public_base64(KEY)])
    headers = sign(KEY, BODY)

    assert reason_of(verifier, headers, BODY.replace(b"delivered", b"bounce")) == (
        "no_matching_signature"
    )


def test_sendgrid_tampered_timestamp_rejected():
    verifier = SendGridVerifier([public_base64(KEY)])
    headers = sign(KEY, BODY) | {TIMESTAMP_HEADER: str(T + 1)}

    assert reason_of(verifier, headers, BODY) == "no_matching_signature"


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_sendgrid_missing_header_rejected(missing):
    verifier = SendGridVerifier([public_base64(KEY)])
    headers = sign(KEY, BODY)
    del headers[missing]

    assert reason_of(verifier, headers, BODY) == "missing_header"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64!", id="not-base64"),
        pytest.param("MEUCIQ", id="bad-padding"),
        pytest.param("\u00e9" * 8, id="non-ascii"),
    ],
)
def test_sendgrid_malformed_signature_header_rejected(value):
    verifier = SendGridVerifier([public_base64(KEY)])
    headers = {SIGNATURE_HEADER: value, TIMESTAMP_HEADER: str(T)}

    assert reason_of(verifier, headers, BODY) == "malformed_header"


def _der_variants() -> list[object]:
    good = base64.b64decode(sign(KEY, BODY)[SIGNATURE_HEADER])
    return [
        pytest.param(b"\x00\x01\x02\x03", id="not-der"),
        pytest.param(good[:-1], id="truncated-der"),
        pytest.param(good + b"\x00", id="trailing-byte"),
        pytest.param(b"\x30\x06\x02\x01\x00\x02\x01\x00", id="zero-r-and-s"),
        pytest.param(b"\x30\x80" + good[2:], id="indefinite-length"),
    ]


@pytest.mark.parametrize("der", _der_variants())
def test_sendgrid_invalid_der_signature_rejected_not_raised(der):
    verifier = SendGridVerifier([public_base64(KEY)])
    headers = {SIGNATURE_HEADER: base64.b64encode(der).decode(), TIMESTAMP_HEADER: str(T)}

    assert reason_of(verifier, headers, BODY) == "no_matching_signature"


def test_sendgrid_rotation_second_key_accepted():
    verifier = SendGridVerifier([public_base64(OTHER_KEY), public_base64(KEY)])

    assert reason_of(verifier, sign(KEY, BODY), BODY) is None


def test_sendgrid_pem_key_accepted():
    pem = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    verifier = SendGridVerifier([pem.decode()])

    assert reason_of(verifier, sign(KEY, BODY), BODY) is None


def test_sendgrid_non_utf8_body_verified_as_bytes():
    verifier = SendGridVerifier([public_base64(KEY)])
    body = b"\xff\xfe\x00\x80not utf-8\xc3\r\n"
    headers = sign(KEY, body)

    assert reason_of(verifier, headers, body) is None
    assert reason_of(verifier, headers, body[:-2]) == "no_matching_signature"


def test_sendgrid_timestamp_unchecked_by_default():
    verifier = SendGridVerifier([public_base64(KEY)])

    assert reason_of(verifier, sign(KEY, BODY), BODY, now=T + 86400 * 365) is None


def test_sendgrid_tolerance_when_configured():
    verifier = SendGridVerifier([public_base64(KEY)], tolerance_seconds=600)
    headers = sign(KEY, BODY)

    assert reason_of(verifier, headers, BODY, now=T + 600) is None
    assert reason_of(verifier, headers, BODY, now=T + 601) == "timestamp_outside_tolerance"


def test_sendgrid_tolerance_needs_numeric_timestamp():
    verifier = SendGridVerifier([public_base64(KEY)], tolerance_seconds=600)

    assert reason_of(verifier, sign(KEY, BODY, timestamp="later"), BODY) == "malformed_header"


def _bad_keys() -> list[object]:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    spki = PublicFormat.SubjectPublicKeyInfo
    return [
        pytest.param("", id="empty"),
        pytest.param("not base64 at all", id="not-base64"),
        pytest.param(base64.b64encode(b"junk-der").decode(), id="not-der"),
        pytest.param(public_base64(KEY)[:-8], id="truncated"),
        pytest.param(private_base64(KEY), id="private-key"),
        pytest.param(base64.b64encode(p384.public_bytes(Encoding.DER, spki)).decode(), id="p384"),
        pytest.param(base64.b64encode(ed.public_bytes(Encoding.DER, spki)).decode(), id="ed25519"),
        pytest.param("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", id="bad-pem"),
    ]


@pytest.mark.parametrize("secret", _bad_keys())
def test_sendgrid_malformed_key_is_config_error(secret):
    source = SourceConfig(name="mail", scheme="sendgrid", secrets=(secret,))

    with pytest.raises(ConfigError, match=r"mail.*(verification key|P-256)"):
        create_verifier(source)


def test_sendgrid_registered():
    source = SourceConfig(name="mail", scheme="sendgrid", secrets=(public_base64(KEY),))

    assert isinstance(create_verifier(source), SendGridVerifier)


def test_sendgrid_signing_helper_round_trip():
    headers = sendgrid_headers(private_base64(KEY), BODY, T)
    signature = base64.b64decode(headers[SIGNATURE_HEADER])

    KEY.public_key().verify(signature, f"{T}".encode() + BODY, ec.ECDSA(hashes.SHA256()))
    assert headers[TIMESTAMP_HEADER] == str(T)


@pytest.mark.parametrize(
    "private_key",
    [
        pytest.param("", id="empty"),
        pytest.param(public_base64(KEY), id="public-key"),
        pytest.param(
            base64.b64encode(
                ed25519.Ed25519PrivateKey.generate().private_bytes(
                    Encoding.DER, PrivateFormat.PKCS8, NoEncryption()
                )
            ).decode(),
            id="ed25519-key",
        ),
    ],
)
def test_sendgrid_signing_helper_bad_key_is_config_error(private_key):
    with pytest.raises(ConfigError, match="P-256 private key"):
        sendgrid_headers(private_key, BODY, T)


# Samples.

SAMPLE_SOURCE = SourceConfig(
    name="mail",
    scheme="sendgrid",
    secrets=(public_base64(KEY),),
    options={"sample_private_key": private_base64(KEY)},
)


def test_sendgrid_sample_verifies_and_varies():
    headers, body = build_sample(SAMPLE_SOURCE, now=T)
    _, second_body = build_sample(SAMPLE_SOURCE, now=T)
    events = json.loads(body)

    create_verifier(SAMPLE_SOURCE).verify(headers, body, now=T)
    assert body.endswith(b"}]\r\n")
    assert b"},\r\n{" in body
    assert [event["event"] for event in events] == ["processed", "delivered"]
    assert body != second_body


def test_sendgrid_sample_rejected_with_other_key():
    other = SourceConfig(name="mail", scheme="sendgrid", secrets=(public_base64(OTHER_KEY),))

    headers, body = build_sample(SAMPLE_SOURCE, now=T)

    with pytest.raises(VerificationError):
        create_verifier(other).verify(headers, body, now=T)


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(public_base64(OTHER_KEY), id="other-public-key"),
        pytest.param("whsec_aG9va2xpbmUtZm9yZ2Vk", id="not-a-public-key"),
    ],
)
def test_sendgrid_sample_untrusted_private_key_forged(secret):
    # As after `send-sample --forge`: the private key matches no configured
    # public key, so the sample is signed with a random key instead.
    forged = SourceConfig(
        name="mail",
        scheme="sendgrid",
        secrets=(secret,),
        options={"sample_private_key": private_base64(KEY)},
    )

    headers, body = build_sample(forged, now=T)

    for key in (KEY, OTHER_KEY):
        with pytest.raises(VerificationError):
            SendGridVerifier([public_base64(key)]).verify(headers, body, now=T)


def test_sendgrid_sample_without_private_key_is_config_error():
    source = SourceConfig(name="mail", scheme="sendgrid", secrets=(public_base64(KEY),))

    with pytest.raises(ConfigError, match="sample_private_key"):
        build_sample(source, now=T)


# Documented cases: A16 is sendgrid-python's test vector (a body ending in
# CRLF) and A17 is sendgrid-nodejs's. Header values, bodies, keys and clocks
# are copied unchanged.

A16_BODY = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]'
    b"\r\n"
)
A16_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+"
    "2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
A16_HEADERS = {
    "Content-Type": "application/json;charset=utf-8",
    "User-Agent": "SendGrid Event API",
    SIGNATURE_HEADER: (
        "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15"
        "TluLtEZtM="
    ),
    TIMESTAMP_HEADER: "1600112502",
}
A16_NOW = 1600112512

A17_BODY = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'
A17_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQG"
    "hHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)
A17_HEADERS = {
    "Content-Type": "application/json",
    SIGNATURE_HEADER: (
        "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDW"
        "YNH2j/0="
    ),
    TIMESTAMP_HEADER: "1588788367",
}
A17_NOW = 1588788377

CORPUS_CASES = [
    pytest.param(A16_HEADERS, A16_BODY, [A16_KEY], A16_NOW, None, id="A16-crlf-sdk-vector"),
    pytest.param(
        A16_HEADERS,
        A16_BODY.rstrip(b"\r\n"),
        [A16_KEY],
        A16_NOW,
        "no_matching_signature",
        id="A16-crlf-stripped",
    ),
    pytest.param(
        A16_HEADERS,
        A16_BODY[:-2] + b"\n",
        [A16_KEY],
        A16_NOW,
        "no_matching_signature",
        id="A16-crlf-normalised-to-lf",
    ),
    pytest.param(A17_HEADERS, A17_BODY, [A17_KEY], A17_NOW, None, id="A17-node-sdk-vector"),
    pytest.param(
        A17_HEADERS, A17_BODY, [A16_KEY], A17_NOW, "no_matching_signature", id="A17-other-key"
    ),
    pytest.param(A17_HEADERS, A17_BODY, [A16_KEY, A17_KEY], A17_NOW, None, id="A17-rotation"),
    pytest.param(
        A17_HEADERS | {TIMESTAMP_HEADER: "1588788368"},
        A17_BODY,
        [A17_KEY],
        A17_NOW,
        "no_matching_signature",
        id="A17-timestamp-changed",
    ),
]


@pytest.mark.parametrize(("headers", "body", "keys", "now", "expected"), CORPUS_CASES)
def test_sendgrid_documented_case(headers, body, keys, now, expected):
    verifier = SendGridVerifier(keys)

    assert reason_of(verifier, headers, body, now=now) == expected


def test_sendgrid_documented_bodies_intact():
    expected = {
        "A16": "ef3e4606385ea6adbc55fceb6117cf2784040cf145a010e5ef4afc2bc7c70452",
        "A17": "eea38441e385d441f79d7ee2d875d19793e70ef3bbb439ca2431bb6d6ca4b475",
    }
    bodies = {"A16": A16_BODY, "A17": A17_BODY}

    for case, body in bodies.items():
        assert hashlib.sha256(body).hexdigest() == expected[case], case


def test_sendgrid_misspelt_option_is_config_error():
    options = {"sample_privatekey": private_base64(KEY)}
    source = SourceConfig(
        name="mail", scheme="sendgrid", secrets=(public_base64(KEY),), options=options
    )

    with pytest.raises(ConfigError, match="no option sample_privatekey"):
        create_verifier(source)
