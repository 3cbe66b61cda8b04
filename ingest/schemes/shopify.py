"""Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, raw body)>`.

The key is the app's client secret as UTF-8, or for webhooks created in the
Shopify admin the secret shown under Settings > Notifications. Shopify signs
no timestamp, so repeats are removed downstream by `X-Shopify-Webhook-Id`,
which stays the same across Shopify's retries of one delivery.
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
)

HEADER = "x-shopify-hmac-sha256"


class ShopifyVerifier(Verifier):
    """Verify Shopify's `X-Shopify-Hmac-Sha256` header."""

    name = "shopify"
    option_names = frozenset()
    signed_headers = frozenset({HEADER})

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, HEADER)

        expected = hmac_signatures(self.keys, body, encoding="base64")
        if not matches_any(expected, [signature_bytes(value.strip())]):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, "X-Shopify-Hmac-Sha256 does not match a secret"
            )
