"""Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>...]`.

The signed bytes are `ts + ":" + raw body` and the MAC is hex HMAC-SHA256
keyed with the endpoint's secret key (`pdl_ntfset_...`) as UTF-8. While a
secret is rotated Paddle sends one `h1` per active secret, and any match
is enough. The default window is 5 s in either direction, the default
variance of Paddle's SDKs, so a receiver whose clock drifts needs a larger
`tolerance_seconds`.
"""

from __future__ import annotations

from collections.abc import Mapping

from hookline.errors import VerificationError
from ingest.schemes.base import (
    MALFORMED_HEADER,
    NO_MATCHING_SIGNATURE,
    ReplayIdentity,
    Verifier,
    check_tolerance,
    hmac_signatures,
    matches_any,
    parse_unix_seconds,
    replay_material,
    require_header,
    signature_bytes,
)

HEADER = "paddle-signature"
SIGNATURE_KEY = "h1"


def parse_paddle_signature(value: str) -> tuple[str, list[str]]:
    """Split a Paddle-Signature value into its timestamp text and h1 signatures.

    Raises:
        VerificationError: `malformed_header` when `ts` is missing or repeated.
    """
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in value.split(";"):
        key, separator, text = item.strip().partition("=")
        if not separator:
            continue
        if key == "ts":
            timestamps.append(text.strip())
        elif key == SIGNATURE_KEY:
            signatures.append(text.strip())

    if len(timestamps) != 1:
        raise VerificationError(
            MALFORMED_HEADER, "Paddle-Signature must contain exactly one ts=<unix seconds>"
        )
    return timestamps[0], signatures


class PaddleVerifier(Verifier):
    """Verify Paddle Billing's `Paddle-Signature` header."""

    name = "paddle"
    default_tolerance_seconds = 5
    option_names = frozenset()
    signed_headers = frozenset({HEADER})
    signs_timestamp = True

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, HEADER)
        timestamp_text, signatures = parse_paddle_signature(value)
        timestamp = parse_unix_seconds("Paddle-Signature", timestamp_text)
        if not signatures:
            raise VerificationError(NO_MATCHING_SIGNATURE, "Paddle-Signature has no h1 signature")

        expected = hmac_signatures(self.keys, f"{timestamp_text}:".encode() + body)
        if not matches_any(expected, (signature_bytes(text) for text in signatures)):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, "no h1 signature in Paddle-Signature matches a secret"
            )

        check_tolerance(timestamp, now, self.tolerance_seconds)

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        timestamp_text, _ = parse_paddle_signature(headers[HEADER])
        timestamp = parse_unix_seconds("Paddle-Signature", timestamp_text)
        return ReplayIdentity(replay_material(timestamp_text), timestamp)
