"""Standard Webhooks, also sent by Svix under `svix-*` header names.

Headers `webhook-id`, `webhook-timestamp` and `webhook-signature` (or
`svix-id`, `svix-timestamp`, `svix-signature`). The signature header is a
space-separated list of `<version>,<signature>` entries. Only `v1`
(base64 HMAC-SHA256 over `id + "." + timestamp + "." + raw body`) is checked;
other versions such as the Ed25519 `v1a` are ignored. The key is the base64
decoding of the secret after its `whsec_` prefix. The timestamp window is
symmetric, as in the reference libraries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from hookline.errors import ConfigError, VerificationError
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

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
ID_HEADERS = ("webhook-id", "svix-id")
TIMESTAMP_HEADERS = ("webhook-timestamp", "svix-timestamp")
SIGNATURE_HEADERS = ("webhook-signature", "svix-signature")


def decode_standard_secret(secret: str) -> bytes:
    """Return the HMAC key of a Standard Webhooks secret `whsec_<base64>`.

    Raises:
        ConfigError: when the part after `whsec_` is not valid base64.
    """
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            "a standard-webhooks secret must be 'whsec_' followed by base64; "
            "copy it unchanged from the sender's dashboard"
        ) from None


def parse_signature_list(value: str) -> list[tuple[str, str]]:
    """Split a signature header into (version, signature) pairs.

    Raises:
        VerificationError: `malformed_header` when no entry has the form
            `<version>,<signature>`.
    """
    entries = []
    for item in value.split():
        version, separator, signature = item.partition(",")
        if separator and version and signature:
            entries.append((version, signature))
    if not entries:
        raise VerificationError(
            MALFORMED_HEADER, "signature header must list entries of the form v1,<base64>"
        )
    return entries


class StandardWebhooksVerifier(Verifier):
    """Verify Standard Webhooks (and Svix-branded) signature headers."""

    name = "standard-webhooks"
    default_tolerance_seconds = 300
    signed_headers = frozenset({*ID_HEADERS, *TIMESTAMP_HEADERS, *SIGNATURE_HEADERS})
    signs_timestamp = True

    def decode_secret(self, secret: str) -> bytes:
        return decode_standard_secret(secret)

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, message_id = require_header(headers, *ID_HEADERS)
        timestamp_name, timestamp_text = require_header(headers, *TIMESTAMP_HEADERS)
        _, signature_header = require_header(headers, *SIGNATURE_HEADERS)
        timestamp = parse_unix_seconds(timestamp_name, timestamp_text)
        entries = parse_signature_list(signature_header)

        signed = f"{message_id}.{timestamp_text.strip()}.".encode() + body
        expected = [
            base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in self.keys
        ]
        received = [
            signature_bytes(signature)
            for version, signature in entries
            if version == SIGNATURE_VERSION
        ]
        if not matches_any(expected, received):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, "no v1 entry in the signature header matches a secret"
            )

        check_tolerance(timestamp, now, self.tolerance_seconds)

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        _, message_id = require_header(headers, *ID_HEADERS)
        timestamp_name, timestamp_text = require_header(headers, *TIMESTAMP_HEADERS)
        timestamp = parse_unix_seconds(timestamp_name, timestamp_text)
        return ReplayIdentity(replay_material(message_id, timestamp_text.strip()), timestamp)
