"""GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`.

GitHub signs no timestamp, so there is no replay window and repeats are
removed downstream by the `X-GitHub-Delivery` id. Form-encoded deliveries
(`payload=<url-encoded JSON>`) are verified over the raw form bytes like any
other body. The legacy header `X-Hub-Signature: sha1=<hex HMAC-SHA1>` is
accepted only with the source option `allow_sha1 = true`, and only when
`X-Hub-Signature-256` is absent, because a request that carries the SHA-256
header must pass on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hookline.errors import VerificationError
from ingest.schemes.base import (
    MISSING_HEADER,
    NO_MATCHING_SIGNATURE,
    Verifier,
    hmac_signatures,
    matches_any,
    option_flag,
    signature_bytes,
    strip_prefix,
)

HEADER = "x-hub-signature-256"
LEGACY_HEADER = "x-hub-signature"


def check_hub_signature(
    keys: Iterable[bytes], label: str, value: str, body: bytes, algorithm: str
) -> None:
    """Check a `<algorithm>=<hex HMAC>` header value such as GitHub and Intercom send.

    Args:
        keys: HMAC keys, any of which may match.
        label: Header name as shown in error details.
        value: The header value.
        body: The raw body.
        algorithm: `sha1` or `sha256`, which is also the value's prefix.

    Raises:
        VerificationError: `malformed_header` without the prefix,
            `no_matching_signature` when no key matches.
    """
    received = signature_bytes(strip_prefix(label, value, f"{algorithm}="))
    expected = hmac_signatures(keys, body, algorithm)
    if not matches_any(expected, [received]):
        raise VerificationError(NO_MATCHING_SIGNATURE, f"{label} does not match a secret")


class GitHubVerifier(Verifier):
    """Verify GitHub's `X-Hub-Signature-256` header, or the legacy SHA-1 one when allowed."""

    name = "github"
    option_names = frozenset({"allow_sha1"})
    signed_headers = frozenset({HEADER, LEGACY_HEADER})

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        self.allow_sha1 = option_flag(self.options, "allow_sha1")

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        value = headers.get(HEADER)
        if value is not None:
            check_hub_signature(self.keys, "X-Hub-Signature-256", value, body, "sha256")
            return

        legacy = headers.get(LEGACY_HEADER)
        if self.allow_sha1 and legacy is not None:
            check_hub_signature(self.keys, "X-Hub-Signature", legacy, body, "sha1")
            return

        names = "X-Hub-Signature-256 or X-Hub-Signature" if self.allow_sha1 else HEADER
        raise VerificationError(MISSING_HEADER, f"header {names} is missing")
