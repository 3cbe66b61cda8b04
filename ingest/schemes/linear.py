"""Linear: `Linear-Signature: <hex HMAC-SHA256(secret, raw body)>`.

Linear puts its timestamp inside the body: `webhookTimestamp`, Unix time in
milliseconds. After the signature matches, the body is parsed as JSON and
the timestamp must be within 60 s of the clock in either direction, the
window of Linear's own SDK (`@linear/sdk` LinearWebhookClient). A signed body
that is not a JSON object or lacks a numeric `webhookTimestamp` is rejected
with 400 `invalid_body`.
"""

from __future__ import annotations

from collections.abc import Mapping

from hookline.errors import VerificationError
from ingest.schemes.base import (
    INVALID_BODY,
    NO_MATCHING_SIGNATURE,
    ReplayIdentity,
    Verifier,
    check_tolerance,
    hmac_signatures,
    json_object,
    matches_any,
    require_header,
    signature_bytes,
)

HEADER = "linear-signature"
TIMESTAMP_FIELD = "webhookTimestamp"


def body_timestamp_seconds(body: bytes) -> float:
    """Return `webhookTimestamp` of a Linear body, converted to Unix seconds.

    Raises:
        VerificationError: `invalid_body` (status 400) when the body is not a
            JSON object with a numeric `webhookTimestamp`.
    """
    document = json_object(body)
    if document is None:
        raise VerificationError(INVALID_BODY, "body is not a JSON object", status=400)
    millis = document.get(TIMESTAMP_FIELD)
    if isinstance(millis, bool) or not isinstance(millis, int | float):
        raise VerificationError(
            INVALID_BODY, f"body has no numeric {TIMESTAMP_FIELD} in milliseconds", status=400
        )
    return millis / 1000


class LinearVerifier(Verifier):
    """Verify Linear's `Linear-Signature` header and the body's `webhookTimestamp`."""

    name = "linear"
    default_tolerance_seconds = 60
    option_names = frozenset()
    signed_headers = frozenset({HEADER})
    signs_timestamp = True

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, HEADER)

        expected = hmac_signatures(self.keys, body)
        if not matches_any(expected, [signature_bytes(value.strip())]):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, "Linear-Signature does not match a secret"
            )

        check_tolerance(body_timestamp_seconds(body), now, self.tolerance_seconds)

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        # The timestamp is inside the signed body, so the body alone identifies the request.
        return ReplayIdentity(timestamp=body_timestamp_seconds(body))
