"""Unit tests of the Shopify verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.schemes import create_verifier
from ingest.schemes.shopify import ShopifyVerifier
from ingest.signing import shopify_headers

SECRET = "test-only-shopify-client-secret"
OTHER_SECRET = "test-only-shopify-other-secret"
NOW = 1767225600
BODY = b'{"id":820982911946154508,"email":"jon@example.com","total_price":"10.00"}'


def signature(secret: str, body: bytes = BODY) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def reason_of(verifier: ShopifyVerifier, headers: dict[str, str], body: bytes) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=NOW)
    except VerificationError as error:
        return error.reason
    return None


def test_shopify_valid_signature_accepted():
    verifier = ShopifyVerifier([SECRET])

    assert reason_of(verifier, {"X-Shopify-Hmac-Sha256": signature(SECRET)}, BODY) is None


def test_shopify_wrong_secret_rejected():
    verifier = ShopifyVerifier([SECRET])
    headers = {"X-Shopify-Hmac-Sha256": signature(OTHER_SECRET)}

    assert reason_of(verifier, headers, BODY) == "no_matching_signature"


def test_shopify_tampered_body_rejected():
    verifier = ShopifyVerifier([SECRET])
    headers = {"X-Shopify-Hmac-Sha256": signature(SECRET)}

    assert reason_of(verifier, headers, BODY.replace(b"10.00", b"0.01")) == (
        "no_matching_signature"
    )


def test_shopify_missing_header_rejected():
    verifier = ShopifyVerifier([SECRET])

    assert reason_of(verifier, {"X-Shopify-Topic": "orders/create"}, BODY) == "missing_header"


def test_shopify_hex_signature_rejected():
    # Shopify sends base64, so the hex form of the same MAC must not pass.
    verifier = ShopifyVerifier([SECRET])
    hex_signature = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()

    assert reason_of(verifier, {"X-Shopify-Hmac-Sha256": hex_signature}, BODY) == (
        "no_matching_signature"
    )


def test_shopify_rotation_either_secret_accepted():
    verifier = ShopifyVerifier([OTHER_SECRET, SECRET])

    assert reason_of(verifier, {"X-Shopify-Hmac-Sha256": signature(SECRET)}, BODY) is None
    assert reason_of(verifier, {"X-Shopify-Hmac-Sha256": signature(OTHER_SECRET)}, BODY) is None


def test_shopify_surrounding_spaces_ignored():
    verifier = ShopifyVerifier([SECRET])

    assert reason_of(verifier, {"x-shopify-hmac-sha256": f" {signature(SECRET)} "}, BODY) is None


def test_shopify_non_utf8_body_verified_as_bytes():
    verifier = ShopifyVerifier([SECRET])
    body = b"\xff\xfe\x80{not utf-8}"

    assert reason_of(verifier, {"X-Shopify-Hmac-Sha256": signature(SECRET, body)}, body) is None


def test_shopify_non_ascii_signature_rejected():
    verifier = ShopifyVerifier([SECRET])

    assert reason_of(verifier, {"X-Shopify-Hmac-Sha256": "\u00e9t\u00e9="}, BODY) == (
        "no_matching_signature"
    )


def test_shopify_signing_helper_matches_verifier():
    verifier = ShopifyVerifier([SECRET])

    headers = shopify_headers(SECRET, BODY)

    assert headers == {"X-Shopify-Hmac-Sha256": signature(SECRET)}
    assert reason_of(verifier, headers, BODY) is None


def test_shopify_unknown_option_is_config_error():
    source = SourceConfig(
        name="shop", scheme="shopify", secrets=(SECRET,), options={"algorithm": "sha1"}
    )

    with pytest.raises(ConfigError, match="algorithm"):
        create_verifier(source)
