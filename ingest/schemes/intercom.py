"""Intercom: `X-Hub-Signature: sha1=<hex HMAC-SHA1(client secret, raw body)>`.

Intercom signs with SHA-1, not SHA-256, under the header name GitHub uses
for its legacy signature. No timestamp is signed.
"""

from __future__ import annotations

from collections.abc import Mapping

from ingest.schemes.base import Verifier, require_header
from ingest.schemes.github import check_hub_signature

HEADER = "x-hub-signature"


class IntercomVerifier(Verifier):
    """Verify Intercom's `X-Hub-Signature` header."""

    name = "intercom"
    option_names = frozenset()
    signed_headers = frozenset({HEADER})

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, HEADER)
        check_hub_signature(self.keys, "X-Hub-Signature", value, body, "sha1")
