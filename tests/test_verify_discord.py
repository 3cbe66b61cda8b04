"""Unit tests of the Discord Ed25519 verifier and its PING handshakes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from litestar.testing import TestClient

from hookline.config import HooklineConfig, KafkaConfig, SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.app import create_app
from ingest.samples import build_sample
from ingest.schemes import create_verifier
from ingest.schemes.discord import DiscordVerifier
from ingest.signing import discord_headers

# RFC 8032 section 7.1, TEST 1: a published key pair, used by case A15.
RFC_PRIVATE_KEY = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC_PUBLIC_KEY = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
# A second key pair, from the 32-byte seed 0x01 0x01 ... 0x01.
OTHER_PRIVATE_KEY = "01" * 32
OTHER_PUBLIC_KEY = (
    Ed25519PrivateKey.from_private_bytes(bytes.fromhex(OTHER_PRIVATE_KEY))
    .public_key()
    .public_bytes(Encoding.Raw, PublicFormat.Raw)
    .hex()
)
T = 1767225600
BODY = b'{"application_id":"1","id":"2","token":"t","type":2,"data":{"name":"ping"}}'


def sign(private_key: str, body: bytes, timestamp: int | str = T) -> dict[str, str]:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_key))
    signature = key.sign(str(timestamp).encode() + body).hex()
    return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": str(timestamp)}


def rejection(
    verifier: DiscordVerifier, headers: dict[str, str], body: bytes, now: float = T
) -> tuple[str, int] | None:
    """Return the rejection reason and status, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=now)
    except VerificationError as error:
        return error.reason, error.status
    return None


def test_discord_valid_signature_accepted():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])

    assert rejection(verifier, sign(RFC_PRIVATE_KEY, BODY), BODY) is None


def test_discord_wrong_key_rejected_401():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])

    assert rejection(verifier, sign(OTHER_PRIVATE_KEY, BODY), BODY) == (
        "no_matching_signature",
        401,
    )


def test_discord_tampered_body_rejected_401():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])
    headers = sign(RFC_PRIVATE_KEY, BODY)

    assert rejection(verifier, headers, BODY.replace(b"ping", b"pong")) == (
        "no_matching_signature",
        401,
    )


def test_discord_tampered_timestamp_rejected_401():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])
    headers = sign(RFC_PRIVATE_KEY, BODY) | {"X-Signature-Timestamp": str(T + 1)}

    assert rejection(verifier, headers, BODY) == ("no_matching_signature", 401)


@pytest.mark.parametrize("missing", ["X-Signature-Ed25519", "X-Signature-Timestamp"])
def test_discord_missing_header_rejected_401(missing):
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])
    headers = sign(RFC_PRIVATE_KEY, BODY)
    del headers[missing]

    assert rejection(verifier, headers, BODY) == ("missing_header", 401)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("zz" * 64, id="not-hex"),
        pytest.param("ab" * 63, id="63-bytes"),
        pytest.param("ab" * 65, id="65-bytes"),
        pytest.param("a" * 127, id="odd-length"),
        pytest.param("\u00e9" * 128, id="non-ascii"),
    ],
)
def test_discord_malformed_signature_rejected_401(value):
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])
    headers = {"X-Signature-Ed25519": value, "X-Signature-Timestamp": str(T)}

    assert rejection(verifier, headers, BODY) == ("malformed_header", 401)


def test_discord_all_zero_signature_rejected_401():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])
    headers = {"X-Signature-Ed25519": "00" * 64, "X-Signature-Timestamp": str(T)}

    assert rejection(verifier, headers, BODY) == ("no_matching_signature", 401)


def test_discord_rotation_second_key_accepted():
    verifier = DiscordVerifier([OTHER_PUBLIC_KEY, RFC_PUBLIC_KEY])

    assert rejection(verifier, sign(RFC_PRIVATE_KEY, BODY), BODY) is None
    assert rejection(verifier, sign(OTHER_PRIVATE_KEY, BODY), BODY) is None


def test_discord_upper_case_hex_accepted():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY.upper()])
    headers = sign(RFC_PRIVATE_KEY, BODY)
    headers["X-Signature-Ed25519"] = headers["X-Signature-Ed25519"].upper()

    assert rejection(verifier, headers, BODY) is None


def test_discord_non_utf8_body_verified_as_bytes():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])
    body = b"\xff\xfe\x00\x80not utf-8\xc3"
    headers = sign(RFC_PRIVATE_KEY, body)

    assert rejection(verifier, headers, body) is None
    assert verifier.handshake(headers, body) is None


def test_discord_timestamp_unchecked_by_default():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])

    assert rejection(verifier, sign(RFC_PRIVATE_KEY, BODY), BODY, now=T + 86400 * 365) is None


def test_discord_tolerance_when_configured():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY], tolerance_seconds=300)
    headers = sign(RFC_PRIVATE_KEY, BODY)

    assert rejection(verifier, headers, BODY, now=T + 300) is None
    assert rejection(verifier, headers, BODY, now=T + 301) == ("timestamp_outside_tolerance", 401)
    assert rejection(verifier, headers, BODY, now=T - 301) == ("timestamp_outside_tolerance", 401)


def test_discord_tolerance_needs_numeric_timestamp():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY], tolerance_seconds=300)
    headers = sign(RFC_PRIVATE_KEY, BODY, timestamp="soon")

    assert rejection(verifier, headers, BODY) == ("malformed_header", 401)


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("", id="empty"),
        pytest.param("not-hex-" * 8, id="not-hex"),
        pytest.param(RFC_PUBLIC_KEY[:-2], id="31-bytes"),
        pytest.param(RFC_PUBLIC_KEY + "00", id="33-bytes"),
        pytest.param("11qYAYKxCrfVS/7TyWQHOg7hcvPaoiMlrwIaaPcHURo=", id="base64"),
    ],
)
def test_discord_malformed_public_key_is_config_error(secret):
    source = SourceConfig(name="bot", scheme="discord", secrets=(secret,))

    with pytest.raises(ConfigError, match="bot.*public key as 64 hex digits"):
        create_verifier(source)


def test_discord_registered():
    source = SourceConfig(name="bot", scheme="discord", secrets=(f" {RFC_PUBLIC_KEY}\n",))

    verifier = create_verifier(source)

    assert isinstance(verifier, DiscordVerifier)
    assert verifier.keys == [bytes.fromhex(RFC_PUBLIC_KEY)]


# Handshakes: interaction PING (type 1) and webhook event PING (type 0).


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param({"type": 1, "id": "1", "token": "t"}, (200, b'{"type":1}'), id="interaction"),
        pytest.param({"version": 1, "application_id": "1", "type": 0}, (204, b""), id="event-ping"),
        pytest.param(
            {"version": 1, "application_id": "1", "type": 1, "event": {"type": "X"}},
            None,
            id="webhook-event",
        ),
        pytest.param({"type": 2, "id": "1", "token": "t"}, None, id="application-command"),
        pytest.param({"type": True}, None, id="type-true"),
        pytest.param({"type": "1"}, None, id="type-string"),
        pytest.param({"type": 1.0}, None, id="type-float"),
        pytest.param([{"type": 1}], None, id="array"),
    ],
)
def test_discord_handshake_by_payload(document, expected):
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])

    reply = verifier.handshake({}, json.dumps(document).encode())

    if expected is None:
        assert reply is None
    else:
        assert reply is not None
        assert (reply.status, reply.body) == expected


def test_discord_handshake_invalid_json_is_event():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])

    assert verifier.handshake({}, b'{"type": 1') is None


# Samples.

SAMPLE_SOURCE = SourceConfig(
    name="bot",
    scheme="discord",
    secrets=(RFC_PUBLIC_KEY,),
    options={"sample_private_key": RFC_PRIVATE_KEY},
)


def test_discord_sample_verifies_and_is_event():
    verifier = create_verifier(SAMPLE_SOURCE)

    headers, body = build_sample(SAMPLE_SOURCE, now=T)
    _, second_body = build_sample(SAMPLE_SOURCE, now=T)

    verifier.verify(headers, body, now=T)
    assert verifier.handshake(headers, body) is None
    assert json.loads(body)["event"]["type"] == "APPLICATION_AUTHORIZED"
    assert headers["X-Signature-Timestamp"] == str(T)
    assert body != second_body


def test_discord_sample_rejected_with_other_key():
    other = SourceConfig(name="bot", scheme="discord", secrets=(OTHER_PUBLIC_KEY,))

    headers, body = build_sample(SAMPLE_SOURCE, now=T)

    with pytest.raises(VerificationError):
        create_verifier(other).verify(headers, body, now=T)


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(OTHER_PUBLIC_KEY, id="other-public-key"),
        pytest.param("whsec_aG9va2xpbmUtZm9yZ2Vk", id="not-a-public-key"),
    ],
)
def test_discord_sample_untrusted_private_key_forged(secret):
    # As after `send-sample --forge`: the private key matches no configured
    # public key, so the sample is signed with a random key instead.
    forged = SourceConfig(
        name="bot",
        scheme="discord",
        secrets=(secret,),
        options={"sample_private_key": RFC_PRIVATE_KEY},
    )

    headers, body = build_sample(forged, now=T)

    for public_key in (RFC_PUBLIC_KEY, OTHER_PUBLIC_KEY):
        with pytest.raises(VerificationError):
            DiscordVerifier([public_key]).verify(headers, body, now=T)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="missing"),
        pytest.param({"sample_private_key": "xyz"}, id="not-hex"),
    ],
)
def test_discord_sample_without_private_key_is_config_error(options):
    source = SourceConfig(name="bot", scheme="discord", secrets=(RFC_PUBLIC_KEY,), options=options)

    with pytest.raises(ConfigError, match="sample_private_key|private key"):
        build_sample(source, now=T)


# Documented case A15: an interaction PING signed with the RFC 8032 key.
# Header values, body, public key and clock are copied unchanged.

A15_BODY = (
    b'{"application_id":"1100000000000000001","id":"1100000000000000002",'
    b'"token":"corpus_interaction_token","type":1,'
    b'"user":{"id":"1100000000000000003","username":"corpus-user"},"version":1}'
)
A15_SIGNATURE = (
    "a1f780ec8bd338ffd6e197e1688f04707fda0a4214a1fad5f2484cfe62171e27"
    "6d4232154fd092013874fe0f7447a4428ffcdfc75d989dfff66294ec7becee02"
)
A15_HEADERS = {
    "Content-Type": "application/json",
    "X-Signature-Ed25519": A15_SIGNATURE,
    "X-Signature-Timestamp": "1767225600",
}
A15_NOW = 1767225601


def test_discord_documented_ping_accepted():
    verifier = DiscordVerifier([RFC_PUBLIC_KEY])

    assert rejection(verifier, A15_HEADERS, A15_BODY, now=A15_NOW) is None
    reply = verifier.handshake(A15_HEADERS, A15_BODY)
    assert reply is not None
    assert reply.body == b'{"type":1}'
    assert reply.status == 200
    assert reply.content_type == "application/json"


def test_discord_signing_helper_matches_documented_ping():
    assert discord_headers(RFC_PRIVATE_KEY, A15_BODY, 1767225600) == {
        "X-Signature-Ed25519": A15_SIGNATURE,
        "X-Signature-Timestamp": "1767225600",
    }


def test_discord_documented_body_intact():
    expected = "640e196a0875a11275ca62754ced114bb02e324657503354c63923c5d6104b1f"

    assert hashlib.sha256(A15_BODY).hexdigest() == expected


# Through the ingest application, with a test double for Kafka.


@dataclass
class MemoryProducer:
    """Test double of RecordProducer that keeps produced values in memory."""

    values: list[bytes] = field(default_factory=list)
    connected: bool = True

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def check_ready(self) -> bool:
        return True

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        if topic == "test.raw":
            self.values.append(value)
        return object()


def discord_client(producer: MemoryProducer) -> TestClient:
    source = SourceConfig(
        name="discord", scheme="discord", secrets=(RFC_PUBLIC_KEY,), event_type="json:/type"
    )
    config = HooklineConfig(
        kafka=KafkaConfig(raw_topic="test.raw", rejected_topic="test.rejected"),
        sources={"discord": source},
    )
    return TestClient(create_app(config, producer=producer))


def test_discord_app_ping_answered_not_stored():
    producer = MemoryProducer()
    with discord_client(producer) as client:
        response = client.post("/webhooks/discord", content=A15_BODY, headers=A15_HEADERS)

    assert response.status_code == 200
    assert response.content == b'{"type":1}'
    assert response.headers["content-type"].startswith("application/json")
    assert producer.values == []


def test_discord_app_bad_signature_exactly_401():
    producer = MemoryProducer()
    flipped = ("b" if A15_SIGNATURE[0] != "b" else "c") + A15_SIGNATURE[1:]
    headers = A15_HEADERS | {"X-Signature-Ed25519": flipped}
    with discord_client(producer) as client:
        response = client.post("/webhooks/discord", content=A15_BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "no_matching_signature"
    assert producer.values == []


def test_discord_app_malformed_signature_exactly_401():
    producer = MemoryProducer()
    headers = A15_HEADERS | {"X-Signature-Ed25519": "not hex"}
    with discord_client(producer) as client:
        response = client.post("/webhooks/discord", content=A15_BODY, headers=headers)

    assert response.status_code == 401
    assert producer.values == []


def test_discord_app_webhook_event_ping_204():
    producer = MemoryProducer()
    body = b'{"version":1,"application_id":"1100000000000000001","type":0}'
    headers = {"Content-Type": "application/json", **sign(RFC_PRIVATE_KEY, body)}
    with discord_client(producer) as client:
        response = client.post("/webhooks/discord", content=body, headers=headers)

    assert response.status_code == 204
    assert response.content == b""
    assert producer.values == []


def test_discord_app_webhook_event_stored():
    producer = MemoryProducer()
    headers, body = build_sample(SAMPLE_SOURCE)
    with discord_client(producer) as client:
        response = client.post("/webhooks/discord", content=body, headers=headers)

    assert response.status_code == 200
    assert "receipt_id" in response.json()
    assert producer.values == [body]


def test_discord_misspelt_option_is_config_error():
    options = {"sample_privatekey": RFC_PRIVATE_KEY}
    source = SourceConfig(name="bot", scheme="discord", secrets=(RFC_PUBLIC_KEY,), options=options)

    with pytest.raises(ConfigError, match="no option sample_privatekey"):
        create_verifier(source)
