"""Typeform: `Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>`.

Unlike GitHub's header of the same prefix, the MAC after `sha256=` is
base64, not hex. No timestamp is signed.
"""

from __future__ import annotations

from collections.abc import Mapping

from hookline.errors import VerificationError
from ingest.schemes.base import (
    NO_MATCHING_SIGNATURE,
    Verifier,
    hmac_signatures,
    matches_any,
    require_header,
    signature_bytes,
    strip_prefix,
)

HEADER = "typeform-signature"
PREFIX = "sha256="


class TypeformVerifier(Verifier):
    """Verify Typeform's `Typeform-Signature` header."""

    name = "typeform"
    option_names = frozenset()
    signed_headers = frozenset({HEADER})

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, HEADER)
        received = strip_prefix("Typeform-Signature", value, PREFIX)

        expected = hmac_signatures(self.keys, body, encoding="base64")
        if not matches_any(expected, [signature_bytes(received)]):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, "Typeform-Signature does not match a secret"
            )
