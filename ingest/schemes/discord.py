"""Discord: Ed25519 signature in `X-Signature-Ed25519` over timestamp + raw body.

The signed bytes are the `X-Signature-Timestamp` value followed by the raw
body. The signature is 64 bytes in hex and each secret is an application's
32-byte public key in hex, as the Developer Portal shows it. Discord probes
endpoints with invalid signatures and expects exactly 401 for them, which is
the status of every rejection here. Discord documents no timestamp window,
so the timestamp is checked only when `tolerance_seconds` is set.

Two kinds of requests use this scheme, and both send a PING when the URL is
saved:

- Interactions: PING is `{"type": 1, ...}` and the reply must be
  `{"type":1}`.
- Webhook events: PING is `{"type": 0, ...}` and the reply must be 204
  with no body. Events are `{"type": 1, "event": {...}}` and are produced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hookline.errors import ConfigError, VerificationError
from ingest.schemes.base import (
    MALFORMED_HEADER,
    NO_MATCHING_SIGNATURE,
    Handshake,
    ReplayIdentity,
    Verifier,
    check_tolerance,
    parse_unix_seconds,
    replay_material,
    require_header,
    unix_seconds_or_none,
)

SIGNATURE_HEADER = "x-signature-ed25519"
TIMESTAMP_HEADER = "x-signature-timestamp"
SIGNATURE_BYTES = 64

INTERACTION_PING = 1
WEBHOOK_EVENT_PING = 0
PONG = Handshake(body=b'{"type":1}')
WEBHOOK_EVENT_ACK = Handshake(body=b"", status=204)


def decode_public_key(secret: str) -> bytes:
    """Return the 32 raw bytes of a hex Ed25519 public key.

    Raises:
        ConfigError: when SECRET is not 64 hex digits or not a usable key.
    """
    try:
        raw = bytes.fromhex(secret.strip())
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ConfigError(
            "a discord secret must be the application's public key as 64 hex digits; "
            "copy PUBLIC KEY from the Developer Portal's General Information page"
        ) from None
    return raw


def decode_signature(value: str) -> bytes:
    """Return the 64 signature bytes of an X-Signature-Ed25519 value.

    Raises:
        VerificationError: `malformed_header` when VALUE is not 128 hex digits.
    """
    try:
        signature = bytes.fromhex(value.strip())
    except ValueError:
        signature = b""
    if len(signature) != SIGNATURE_BYTES:
        raise VerificationError(
            MALFORMED_HEADER, "X-Signature-Ed25519 must be 128 hex digits (64 bytes)"
        )
    return signature


class DiscordVerifier(Verifier):
    """Verify Discord's Ed25519 request signature and reply to its PINGs."""

    name = "discord"
    # `sample_private_key` is read only by `ingest.samples`, to sign samples.
    option_names = frozenset({"sample_private_key"})
    signed_headers = frozenset({SIGNATURE_HEADER, TIMESTAMP_HEADER})
    signs_timestamp = True

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        self.public_keys = [Ed25519PublicKey.from_public_bytes(raw) for raw in self.keys]

    def decode_secret(self, secret: str) -> bytes:
        return decode_public_key(secret)

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, signature_text = require_header(headers, SIGNATURE_HEADER)
        _, timestamp_text = require_header(headers, TIMESTAMP_HEADER)
        signature = decode_signature(signature_text)
        timestamp = None
        if self.tolerance_seconds is not None:
            timestamp = parse_unix_seconds("X-Signature-Timestamp", timestamp_text)

        signed = timestamp_text.encode("utf-8", "backslashreplace") + body
        if not any(_is_valid(key, signature, signed) for key in self.public_keys):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, "X-Signature-Ed25519 does not verify with a public key"
            )

        if timestamp is not None:
            check_tolerance(timestamp, now, self.tolerance_seconds)

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        # The timestamp is signed as sent, so the material is the text unchanged.
        timestamp_text = headers[TIMESTAMP_HEADER]
        return ReplayIdentity(replay_material(timestamp_text), unix_seconds_or_none(timestamp_text))

    def handshake(self, headers: Mapping[str, str], body: bytes) -> Handshake | None:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(document, dict):
            return None

        kind = document.get("type")
        if type(kind) is not int:
            return None
        if kind == WEBHOOK_EVENT_PING:
            return WEBHOOK_EVENT_ACK
        # Webhook events also have type 1, but they carry an `event` object.
        if kind == INTERACTION_PING and "event" not in document:
            return PONG
        return None


def _is_valid(key: Ed25519PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        return False
    return True
