"""Square: `x-square-hmacsha256-signature: <base64 HMAC-SHA256(key, URL + raw body)>`.

The signed bytes are the subscription's notification URL, byte for byte as
registered at Square, followed by the raw body. The URL comes from the
`public_url` option and never from the request, because behind a proxy the
request shows the internal address. The key is the subscription's signature
key as UTF-8. Square signs no timestamp, so there is no replay window, and
the legacy HMAC-SHA1 header `x-square-signature` is not accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from hookline.errors import VerificationError
from ingest.schemes.base import (
    NO_MATCHING_SIGNATURE,
    Verifier,
    matches_any,
    require_header,
    signature_bytes,
)
from ingest.schemes.twilio import require_url_option

HEADER = "x-square-hmacsha256-signature"


def square_signature(key: bytes, notification_url: str, body: bytes) -> bytes:
    """Return the base64 signature Square sends for BODY posted to NOTIFICATION_URL."""
    signed = notification_url.encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


class SquareVerifier(Verifier):
    """Verify Square's `x-square-hmacsha256-signature` header.

    Options:
        public_url: The subscription's notification URL. Required.
    """

    name = "square"
    option_names = frozenset({"public_url"})
    signed_headers = frozenset({HEADER})

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        self.notification_url = require_url_option(self.options, self.name, "public_url")

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, HEADER)

        expected = [square_signature(key, self.notification_url, body) for key in self.keys]
        if not matches_any(expected, [signature_bytes(value.strip())]):
            raise VerificationError(
                NO_MATCHING_SIGNATURE,
                "x-square-hmacsha256-signature does not match public_url and a signature key",
            )
