"""Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`.

The signed bytes are `t + "." + raw body`, the MAC is hex HMAC-SHA256, and the
key is the whole `whsec_...` string as UTF-8 (Stripe does not base64-decode
it). During a secret roll Stripe sends one v1 entry per active secret. Entries
with other keys, such as the test-mode `v0`, are ignored. The timestamp window
is symmetric, so a timestamp too far in the future fails like one too old.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from hookline.errors import VerificationError
from ingest.schemes.base import (
    MALFORMED_HEADER,
    NO_MATCHING_SIGNATURE,
    ReplayIdentity,
    Verifier,
    check_tolerance,
    matches_any,
    parse_unix_seconds,
    replay_material,
    require_header,
    signature_bytes,
)

HEADER = "stripe-signature"
SIGNATURE_KEY = "v1"


def parse_signature_header(value: str) -> tuple[str, list[str]]:
    """Split a Stripe-Signature value into its timestamp text and v1 signatures.

    Raises:
        VerificationError: `malformed_header` when `t` is missing or repeated.
    """
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in value.split(","):
        key, separator, text = item.strip().partition("=")
        if not separator:
            continue
        if key == "t":
            timestamps.append(text)
        elif key == SIGNATURE_KEY:
            signatures.append(text.strip())

    if len(timestamps) != 1:
        raise VerificationError(
            MALFORMED_HEADER, "Stripe-Signature must contain exactly one t=<unix seconds>"
        )
    return timestamps[0], signatures


class StripeVerifier(Verifier):
    """Verify Stripe's `Stripe-Signature` header."""

    name = "stripe"
    default_tolerance_seconds = 300
    signed_headers = frozenset({HEADER})
    signs_timestamp = True

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, HEADER)
        timestamp_text, signatures = parse_signature_header(value)
        timestamp = parse_unix_seconds("Stripe-Signature", timestamp_text)
        if not signatures:
            raise VerificationError(NO_MATCHING_SIGNATURE, "Stripe-Signature has no v1 signature")

        signed = timestamp_text.strip().encode() + b"." + body
        expected = [hmac.new(key, signed, hashlib.sha256).hexdigest().encode() for key in self.keys]
        if not matches_any(expected, (signature_bytes(text) for text in signatures)):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, "no v1 signature in Stripe-Signature matches a secret"
            )

        check_tolerance(timestamp, now, self.tolerance_seconds)

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        timestamp_text, _ = parse_signature_header(headers[HEADER])
        timestamp = parse_unix_seconds("Stripe-Signature", timestamp_text)
        return ReplayIdentity(replay_material(timestamp_text.strip()), timestamp)
