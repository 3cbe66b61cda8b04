"""SendGrid Event Webhook: ECDSA P-256 with SHA-256 over timestamp + raw body.

Headers `X-Twilio-Email-Event-Webhook-Signature` (base64 of a DER-encoded
ECDSA signature) and `X-Twilio-Email-Event-Webhook-Timestamp`. The signed
bytes are the timestamp value followed by the raw body, which is a JSON array
of events that SendGrid ends with CRLF, so the body must not be trimmed. Each
secret is the verification key from SendGrid's settings: base64 of a DER
SubjectPublicKeyInfo, or the same key in PEM. SendGrid documents no timestamp
window, so the timestamp is checked only when `tolerance_seconds` is set.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, cast

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)

from hookline.errors import ConfigError, VerificationError
from ingest.schemes.base import (
    MALFORMED_HEADER,
    NO_MATCHING_SIGNATURE,
    ReplayIdentity,
    Verifier,
    check_tolerance,
    parse_unix_seconds,
    replay_material,
    require_header,
    unix_seconds_or_none,
)

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
PEM_PREFIX = "-----BEGIN"
SIGNATURE_ALGORITHM = ec.ECDSA(hashes.SHA256())


def decode_public_key(secret: str) -> bytes:
    """Return the DER SubjectPublicKeyInfo of a SendGrid verification key.

    Args:
        secret: base64 of the DER key as SendGrid shows it, or a PEM
            `-----BEGIN PUBLIC KEY-----` block.

    Raises:
        ConfigError: when SECRET is not a P-256 public key in either form.
    """
    text = secret.strip()
    try:
        if text.startswith(PEM_PREFIX):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            "a sendgrid secret must be the verification key from the Event Webhook "
            "settings: base64 of a DER public key, or a PEM public key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError("a sendgrid verification key must be an ECDSA key on the P-256 curve")
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def decode_signature(value: str) -> bytes:
    """Return the DER signature bytes of a base64 signature header value.

    Raises:
        VerificationError: `malformed_header` when VALUE is not base64.
    """
    try:
        signature = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if not signature:
        raise VerificationError(
            MALFORMED_HEADER, "X-Twilio-Email-Event-Webhook-Signature must be base64"
        )
    return signature


class SendGridVerifier(Verifier):
    """Verify SendGrid's signed Event Webhook requests."""

    name = "sendgrid"
    # `sample_private_key` is read only by `ingest.samples`, to sign samples.
    option_names = frozenset({"sample_private_key"})
    signed_headers = frozenset({SIGNATURE_HEADER, TIMESTAMP_HEADER})
    signs_timestamp = True

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        self.public_keys = [_load_p256_key(der) for der in self.keys]

    def decode_secret(self, secret: str) -> bytes:
        return decode_public_key(secret)

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, signature_text = require_header(headers, SIGNATURE_HEADER)
        timestamp_name, timestamp_text = require_header(headers, TIMESTAMP_HEADER)
        signature = decode_signature(signature_text)
        timestamp = None
        if self.tolerance_seconds is not None:
            timestamp = parse_unix_seconds(timestamp_name, timestamp_text)

        signed = timestamp_text.encode("utf-8", "backslashreplace") + body
        if not any(_is_valid(key, signature, signed) for key in self.public_keys):
            raise VerificationError(
                NO_MATCHING_SIGNATURE,
                "X-Twilio-Email-Event-Webhook-Signature does not verify with a verification key",
            )

        if timestamp is not None:
            check_tolerance(timestamp, now, self.tolerance_seconds)

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        # The timestamp is signed as sent, so the material is the text unchanged.
        timestamp_text = headers[TIMESTAMP_HEADER]
        return ReplayIdentity(replay_material(timestamp_text), unix_seconds_or_none(timestamp_text))


def _load_p256_key(der: bytes) -> ec.EllipticCurvePublicKey:
    # decode_public_key has checked that DER is a P-256 key.
    return cast(ec.EllipticCurvePublicKey, load_der_public_key(der))


def _is_valid(key: ec.EllipticCurvePublicKey, signature: bytes, signed: bytes) -> bool:
    # OpenSSL reports a signature that is not valid DER as InvalidSignature too.
    try:
        key.verify(signature, signed, SIGNATURE_ALGORITHM)
    except InvalidSignature:
        return False
    return True
