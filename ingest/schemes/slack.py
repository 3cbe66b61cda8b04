"""Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:" + ts + ":" + raw body)>`.

The timestamp comes from `X-Slack-Request-Timestamp` and must be within
300 s of the clock in either direction. Slash commands and interactivity
payloads are form-encoded with `+` for spaces, and the signature covers
those bytes as sent, so nothing is parsed before verification. A verified
`url_verification` request (`{"type": "url_verification", "challenge": ...}`)
gets the reply `{"challenge": ...}` and is not produced.

Zoom signs the same `v0:<ts>:<body>` string under other header names, so
`V0SignatureVerifier` serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

from hookline.errors import VerificationError
from ingest.schemes.base import (
    NO_MATCHING_SIGNATURE,
    Handshake,
    ReplayIdentity,
    Verifier,
    check_tolerance,
    hmac_signatures,
    json_object,
    matches_any,
    parse_unix_seconds,
    replay_material,
    require_header,
    signature_bytes,
    strip_prefix,
)

VERSION = "v0"


def v0_signed_content(timestamp_text: str, body: bytes) -> bytes:
    """Return the bytes Slack and Zoom sign: `v0:<timestamp>:<raw body>`."""
    return f"{VERSION}:{timestamp_text}:".encode() + body


class V0SignatureVerifier(Verifier):
    """Verify a `v0=<hex>` signature over `v0:<timestamp>:<raw body>`.

    Subclasses name the two headers, lower-case, and the labels shown in errors.
    """

    signature_header: ClassVar[str]
    timestamp_header: ClassVar[str]
    signature_label: ClassVar[str]
    timestamp_label: ClassVar[str]
    default_tolerance_seconds = 300
    option_names = frozenset()
    signs_timestamp = True

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, signature_value = require_header(headers, self.signature_header)
        _, timestamp_text = require_header(headers, self.timestamp_header)
        timestamp = parse_unix_seconds(self.timestamp_label, timestamp_text)
        received = strip_prefix(self.signature_label, signature_value, f"{VERSION}=")

        expected = self.expected_signatures(headers, body)
        if not matches_any(expected, [signature_bytes(received)]):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, f"{self.signature_label} does not match a secret"
            )

        check_tolerance(timestamp, now, self.tolerance_seconds)

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        timestamp_text = headers[self.timestamp_header].strip()
        timestamp = parse_unix_seconds(self.timestamp_label, timestamp_text)
        return ReplayIdentity(replay_material(timestamp_text), timestamp)

    def expected_signatures(self, headers: Mapping[str, str], body: bytes) -> list[bytes]:
        """Return the hex signature of the request under each key, in key order."""
        timestamp_text = headers.get(self.timestamp_header, "").strip()
        return hmac_signatures(self.keys, v0_signed_content(timestamp_text, body))


class SlackVerifier(V0SignatureVerifier):
    """Verify Slack's `X-Slack-Signature` and reply to `url_verification`."""

    name = "slack"
    signature_header = "x-slack-signature"
    timestamp_header = "x-slack-request-timestamp"
    signature_label = "X-Slack-Signature"
    timestamp_label = "X-Slack-Request-Timestamp"
    signed_headers = frozenset({signature_header, timestamp_header})

    def handshake(self, headers: Mapping[str, str], body: bytes) -> Handshake | None:
        document = json_object(body)
        if document is None or document.get("type") != "url_verification":
            return None

        challenge = document.get("challenge")
        if not isinstance(challenge, str):
            error = {"error": "invalid_body", "detail": "url_verification has no challenge string"}
            return Handshake(orjson.dumps(error), status=400)
        return Handshake(orjson.dumps({"challenge": challenge}))
