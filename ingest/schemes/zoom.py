"""Zoom: `x-zm-signature: v0=<hex HMAC-SHA256(secret, "v0:" + ts + ":" + raw body)>`.

The key is the app's secret token and the timestamp comes from
`x-zm-request-timestamp`, checked within 300 s in either direction. Zoom
validates an endpoint with a signed `endpoint.url_validation` event and
expects `{"plainToken": ..., "encryptedToken": <hex HMAC-SHA256(secret,
plainToken)>}` within 3 s. That reply is built here and the event is not
produced.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import orjson

from ingest.schemes.base import Handshake, json_object, signature_bytes
from ingest.schemes.slack import V0SignatureVerifier

URL_VALIDATION = "endpoint.url_validation"


class ZoomVerifier(V0SignatureVerifier):
    """Verify Zoom's `x-zm-signature` and reply to `endpoint.url_validation`."""

    name = "zoom"
    signature_header = "x-zm-signature"
    timestamp_header = "x-zm-request-timestamp"
    signature_label = "x-zm-signature"
    timestamp_label = "x-zm-request-timestamp"
    signed_headers = frozenset({signature_header, timestamp_header})

    def handshake(self, headers: Mapping[str, str], body: bytes) -> Handshake | None:
        document = json_object(body)
        if document is None or document.get("event") != URL_VALIDATION:
            return None

        payload = document.get("payload")
        plain_token = payload.get("plainToken") if isinstance(payload, dict) else None
        if not isinstance(plain_token, str) or not plain_token:
            error = {"error": "invalid_body", "detail": "url_validation has no payload.plainToken"}
            return Handshake(orjson.dumps(error), status=400)

        key = self._signing_key(headers, body)
        encrypted = hmac.new(key, plain_token.encode(), hashlib.sha256).hexdigest()
        return Handshake(orjson.dumps({"plainToken": plain_token, "encryptedToken": encrypted}))

    def _signing_key(self, headers: Mapping[str, str], body: bytes) -> bytes:
        # During a rotation Zoom signs with one of the configured secrets, and the
        # reply must use that same one. `verify` has already passed, so one matches.
        received = signature_bytes(
            headers.get(self.signature_header, "").strip().removeprefix("v0=")
        )
        for key, expected in zip(self.keys, self.expected_signatures(headers, body), strict=True):
            if hmac.compare_digest(expected, received):
                return key
        return self.keys[0]
