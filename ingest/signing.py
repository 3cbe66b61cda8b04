"""Sign requests the way providers do, for tests and `hookline send-sample`.

Each function returns what a provider adds to a request for BODY: mostly
signature headers, but also the URL that Twilio calls for a JSON body and the
signature object that Mailgun puts inside the body. They share the verifiers'
key handling, so a request built here passes the matching verifier when the
secret and clock agree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
    load_pem_private_key,
)

from hookline.errors import ConfigError
from ingest.schemes.generic_hmac import GenericHmacSettings
from ingest.schemes.mailgun import mailgun_signature
from ingest.schemes.square import square_signature
from ingest.schemes.standard_webhooks import decode_standard_secret
from ingest.schemes.token import token_header_format
from ingest.schemes.twilio import (
    FORM_MEDIA_TYPE,
    form_parameters,
    signed_payload,
    twilio_signature,
    with_body_hash,
)


def stripe_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Return the `Stripe-Signature` header for BODY signed at TIMESTAMP."""
    signed = f"{timestamp}.".encode() + body
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}"}


def github_headers(secret: str, body: bytes) -> dict[str, str]:
    """Return the `X-Hub-Signature-256` header for BODY."""
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={signature}"}


def standard_webhooks_headers(
    secret: str,
    body: bytes,
    timestamp: int,
    message_id: str,
    *,
    prefix: str = "webhook",
) -> dict[str, str]:
    """Return the Standard Webhooks id, timestamp and signature headers.

    Args:
        secret: `whsec_<base64>` secret as the sender shows it.
        body: The raw body to sign.
        timestamp: Unix seconds to sign and send.
        message_id: The message id, sent in `<prefix>-id`.
        prefix: Header name prefix: `webhook`, or `svix` for Svix-branded names.
    """
    key = decode_standard_secret(secret)
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        f"{prefix}-id": message_id,
        f"{prefix}-timestamp": str(timestamp),
        f"{prefix}-signature": f"v1,{signature}",
    }


def twilio_json_url(url: str, body: bytes) -> str:
    """Return URL with the `bodySHA256` parameter Twilio adds for a JSON BODY."""
    return with_body_hash(url, hashlib.sha256(body).hexdigest())


def twilio_headers(
    auth_token: str, url: str, body: bytes, content_type: str = FORM_MEDIA_TYPE
) -> dict[str, str]:
    """Return the `X-Twilio-Signature` header for BODY posted to URL.

    A form-encoded BODY is signed with its parameters. Any other BODY is
    signed as Twilio signs JSON: over `twilio_json_url(url, body)` alone, which
    is then the URL the request goes to.
    """
    if content_type.partition(";")[0].strip().lower() == FORM_MEDIA_TYPE:
        payload = signed_payload(url, form_parameters(body))
    else:
        payload = signed_payload(twilio_json_url(url, body))
    return {"X-Twilio-Signature": twilio_signature(auth_token.encode(), payload).decode()}


def square_headers(signature_key: str, notification_url: str, body: bytes) -> dict[str, str]:
    """Return the `x-square-hmacsha256-signature` header for BODY sent to NOTIFICATION_URL."""
    signature = square_signature(signature_key.encode(), notification_url, body)
    return {"x-square-hmacsha256-signature": signature.decode()}


def discord_headers(private_key: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Return Discord's Ed25519 signature and timestamp headers for BODY.

    Args:
        private_key: The 32-byte Ed25519 private key (seed) as 64 hex digits.
        body: The raw body to sign.
        timestamp: Unix seconds to sign and send.

    Raises:
        ConfigError: when PRIVATE_KEY is not 64 hex digits.
    """
    signature = _ed25519_private_key(private_key).sign(str(timestamp).encode() + body)
    return {"X-Signature-Ed25519": signature.hex(), "X-Signature-Timestamp": str(timestamp)}


def discord_public_key(private_key: str) -> bytes:
    """Return the raw 32-byte public key of a hex Ed25519 PRIVATE_KEY.

    Raises:
        ConfigError: when PRIVATE_KEY is not 64 hex digits.
    """
    public_key = _ed25519_private_key(private_key).public_key()
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _ed25519_private_key(text: str) -> ed25519.Ed25519PrivateKey:
    try:
        return ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text.strip()))
    except ValueError:
        raise ConfigError(
            "a discord signing key must be an Ed25519 private key as 64 hex digits"
        ) from None


def sendgrid_headers(private_key: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Return SendGrid's ECDSA signature and timestamp headers for BODY.

    Args:
        private_key: A P-256 private key as base64 of its DER (PKCS #8) or in PEM.
        body: The raw body to sign.
        timestamp: Unix seconds to sign and send.

    Raises:
        ConfigError: when PRIVATE_KEY is not a P-256 private key.
    """
    key = _p256_private_key(private_key)
    signature = key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
    }


def sendgrid_public_key(private_key: str) -> bytes:
    """Return the DER SubjectPublicKeyInfo of a P-256 PRIVATE_KEY.

    Raises:
        ConfigError: when PRIVATE_KEY is not a P-256 private key.
    """
    public_key = _p256_private_key(private_key).public_key()
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def new_sendgrid_private_key() -> str:
    """Return a new random P-256 private key as base64 of its PKCS #8 DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return base64.b64encode(der).decode()


def _p256_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    key = _load_private_key(text.strip())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(
            "a sendgrid signing key must be a P-256 private key in PKCS #8 DER or PEM"
        )
    return key


def _load_private_key(text: str) -> PrivateKeyTypes | None:
    try:
        if text.startswith("-----BEGIN"):
            return load_pem_private_key(text.encode(), password=None)
        return load_der_private_key(base64.b64decode(text, validate=True), password=None)
    except (binascii.Error, ValueError, TypeError, UnsupportedAlgorithm):
        return None


def mailgun_signature_block(signing_key: str, timestamp: int, token: str) -> dict[str, str]:
    """Return the `signature` object that Mailgun puts in the JSON body."""
    signature = mailgun_signature(signing_key.encode(), str(timestamp), token).decode()
    return {"timestamp": str(timestamp), "token": token, "signature": signature}


def _hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def shopify_headers(secret: str, body: bytes) -> dict[str, str]:
    """Return the `X-Shopify-Hmac-Sha256` header for BODY."""
    return {"X-Shopify-Hmac-Sha256": base64.b64encode(_hmac_sha256(secret, body)).decode()}


def slack_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Return Slack's timestamp and `v0=` signature headers for BODY signed at TIMESTAMP."""
    signature = _hmac_sha256(secret, f"v0:{timestamp}:".encode() + body).hex()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={signature}"}


def zoom_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Return Zoom's timestamp and `v0=` signature headers for BODY signed at TIMESTAMP."""
    signature = _hmac_sha256(secret, f"v0:{timestamp}:".encode() + body).hex()
    return {"x-zm-request-timestamp": str(timestamp), "x-zm-signature": f"v0={signature}"}


def linear_headers(secret: str, body: bytes) -> dict[str, str]:
    """Return the `Linear-Signature` header for BODY.

    Linear's timestamp is the `webhookTimestamp` field inside BODY, in milliseconds.
    """
    return {"Linear-Signature": _hmac_sha256(secret, body).hex()}


def hub_sha1_headers(secret: str, body: bytes) -> dict[str, str]:
    """Return `X-Hub-Signature: sha1=<hex>`, as Intercom and GitHub's legacy header send it."""
    signature = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"X-Hub-Signature": f"sha1={signature}"}


def typeform_headers(secret: str, body: bytes) -> dict[str, str]:
    """Return the `Typeform-Signature: sha256=<base64>` header for BODY."""
    signature = base64.b64encode(_hmac_sha256(secret, body)).decode()
    return {"Typeform-Signature": f"sha256={signature}"}


def paddle_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Return the `Paddle-Signature` header for BODY signed at TIMESTAMP."""
    signature = _hmac_sha256(secret, f"{timestamp}:".encode() + body).hex()
    return {"Paddle-Signature": f"ts={timestamp};h1={signature}"}


def generic_hmac_headers(
    secret: str, body: bytes, options: Mapping[str, Any], timestamp: int
) -> dict[str, str]:
    """Return the headers a `generic-hmac` source with OPTIONS expects for BODY.

    The timestamp header is included only when the options name one.

    Raises:
        ConfigError: when OPTIONS do not describe a valid signature format.
    """
    settings = GenericHmacSettings.from_options(options)
    timestamp_text = str(timestamp) if settings.timestamp_header is not None else ""
    [digest] = settings.digests([secret.encode()], body, timestamp_text)
    headers = {settings.header: settings.encode(digest)}
    if settings.timestamp_header is not None:
        headers[settings.timestamp_header] = timestamp_text
    return headers


def token_headers(token: str, options: Mapping[str, Any]) -> dict[str, str]:
    """Return the header that carries TOKEN for a `token` source with OPTIONS."""
    header, prefix = token_header_format(options)
    return {header: f"{prefix}{token}"}


def basic_auth_headers(credentials: str) -> dict[str, str]:
    """Return `Authorization: Basic ...` for CREDENTIALS written as `user:password`."""
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
