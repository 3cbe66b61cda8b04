"""Unit tests of the Square verifier, including the SDK's published vector."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.samples import build_sample
from ingest.schemes import create_verifier
from ingest.schemes.square import SquareVerifier
from ingest.signing import square_headers

KEY = "test_only_square_signature_key_01"
OTHER_KEY = "test_only_square_signature_key_02"
URL = "https://hooks.example.com/webhooks/square"
BODY = b'{"merchant_id":"M1","type":"payment.updated","event_id":"e-1","data":{"id":"p-1"}}'
NOW = 1767225600
HEADER = "x-square-hmacsha256-signature"


def square_signature(key: str, url: str, body: bytes) -> str:
    digest = hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verifier_for(url: str = URL, *keys: str) -> SquareVerifier:
    return SquareVerifier(list(keys or [KEY]), options={"public_url": url})


def signed_headers(key: str = KEY, url: str = URL, body: bytes = BODY) -> dict[str, str]:
    return {"Content-Type": "application/json", HEADER: square_signature(key, url, body)}


def reason_of(verifier: SquareVerifier, headers: dict[str, str], body: bytes) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=NOW)
    except VerificationError as error:
        assert error.status == 401
        return error.reason
    return None


def test_square_valid_signature_accepted():
    assert reason_of(verifier_for(), signed_headers(), BODY) is None


def test_square_wrong_key_rejected():
    assert reason_of(verifier_for(), signed_headers(key=OTHER_KEY), BODY) == "no_matching_signature"


def test_square_tampered_body_rejected():
    tampered = BODY.replace(b"p-1", b"p-2")

    assert reason_of(verifier_for(), signed_headers(), tampered) == "no_matching_signature"


def test_square_body_without_url_rejected():
    # A signature over the body alone, as Shopify would compute it, must not verify.
    digest = hmac.new(KEY.encode(), BODY, hashlib.sha256).digest()
    headers = {HEADER: base64.b64encode(digest).decode()}

    assert reason_of(verifier_for(), headers, BODY) == "no_matching_signature"


@pytest.mark.parametrize(
    "signed_url",
    [
        pytest.param("https://hooks.example.com/webhooks/square/", id="trailing-slash"),
        pytest.param("http://hooks.example.com/webhooks/square", id="http-scheme"),
        pytest.param("https://hooks.example.com:443/webhooks/square", id="explicit-port"),
        pytest.param("http://10.0.0.5:8080/webhooks/square", id="internal-address"),
    ],
)
def test_square_other_url_rejected(signed_url):
    headers = signed_headers(url=signed_url)

    assert reason_of(verifier_for(), headers, BODY) == "no_matching_signature"


def test_square_missing_header_rejected():
    headers = {"Content-Type": "application/json"}

    assert reason_of(verifier_for(), headers, BODY) == "missing_header"


def test_square_legacy_sha1_header_not_accepted():
    digest = hmac.new(KEY.encode(), URL.encode() + BODY, hashlib.sha1).digest()
    headers = {"x-square-signature": base64.b64encode(digest).decode()}

    assert reason_of(verifier_for(), headers, BODY) == "missing_header"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("%%%not-base64%%%", id="not-base64"),
        pytest.param("\u00fc" * 44, id="non-ascii"),
        pytest.param(hmac.new(b"k", b"m", hashlib.sha256).hexdigest(), id="hex-not-base64"),
    ],
)
def test_square_malformed_signature_rejected(value):
    assert reason_of(verifier_for(), {HEADER: value}, BODY) == "no_matching_signature"


def test_square_rotation_second_key_accepted():
    verifier = verifier_for(URL, OTHER_KEY, KEY)

    assert reason_of(verifier, signed_headers(key=KEY), BODY) is None


def test_square_non_utf8_body_verified_as_bytes():
    body = b"\xff\xfe\x00not json\xc3"

    assert reason_of(verifier_for(), signed_headers(body=body), body) is None
    assert reason_of(verifier_for(), signed_headers(body=body), body[:-1]) == (
        "no_matching_signature"
    )


def test_square_signature_surrounding_spaces_ignored():
    headers = {HEADER: f"  {square_signature(KEY, URL, BODY)} "}

    assert reason_of(verifier_for(), headers, BODY) is None


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="missing"),
        pytest.param({"notification_url": URL}, id="other-option-name"),
        pytest.param({"public_url": "hooks.example.com/webhooks/square"}, id="no-scheme"),
    ],
)
def test_square_invalid_public_url_is_config_error(options):
    source = SourceConfig(name="pos", scheme="square", secrets=(KEY,), options=options)

    with pytest.raises(ConfigError, match="pos.*public_url"):
        create_verifier(source)


def test_square_registered_with_options():
    source = SourceConfig(name="pos", scheme="square", secrets=(KEY,), options={"public_url": URL})

    verifier = create_verifier(source)

    assert isinstance(verifier, SquareVerifier)
    assert verifier.notification_url == URL


def test_square_rejection_detail_reveals_no_secret():
    with pytest.raises(VerificationError) as caught:
        verifier_for().verify(signed_headers(key=OTHER_KEY), BODY, now=NOW)

    assert KEY not in caught.value.detail
    assert square_signature(KEY, URL, BODY) not in caught.value.detail


def test_square_sample_verifies_and_varies():
    source = SourceConfig(name="pos", scheme="square", secrets=(KEY,), options={"public_url": URL})
    other = SourceConfig(
        name="pos", scheme="square", secrets=(OTHER_KEY,), options={"public_url": URL}
    )

    headers, body = build_sample(source, now=NOW)
    _, second_body = build_sample(source, now=NOW)

    create_verifier(source).verify(headers, body, now=NOW)
    with pytest.raises(VerificationError):
        create_verifier(other).verify(headers, body, now=NOW)
    assert b'"type":"payment.updated"' in body
    assert body != second_body


# Documented case A13, a test vector of square-python-sdk's webhooks helper.
# Header, body, key and notification URL are copied unchanged.

A13_BODY = (
    b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification",'
    b'"event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f",'
    b'"created_at":"2022-07-13T20:30:59.037339943Z",'
    b'"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
)
A13_KEY = "Ibxx_5AKakO-3qeNVR61Dw"
A13_URL = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
A13_HEADERS = {
    "Content-Type": "application/json",
    "x-square-hmacsha256-signature": "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
}

CORPUS_CASES = [
    pytest.param(A13_HEADERS, A13_BODY, A13_KEY, A13_URL, None, id="A13-sdk-vector"),
    pytest.param(
        A13_HEADERS,
        A13_BODY,
        A13_KEY,
        "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9/",
        "no_matching_signature",
        id="A13-url-with-trailing-slash",
    ),
    pytest.param(
        A13_HEADERS,
        A13_BODY + b"\n",
        A13_KEY,
        A13_URL,
        "no_matching_signature",
        id="A13-body-with-newline",
    ),
]


@pytest.mark.parametrize(("headers", "body", "key", "url", "expected"), CORPUS_CASES)
def test_square_documented_case(headers, body, key, url, expected):
    assert reason_of(verifier_for(url, key), headers, body) == expected


def test_square_signing_helper_matches_sdk_vector():
    assert square_headers(A13_KEY, A13_URL, A13_BODY) == {
        "x-square-hmacsha256-signature": "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="
    }


def test_square_documented_body_intact():
    expected = "f8a30ef448459544821935f882dbf53d90ad57874ade0a07272d7ca6fc97afe1"

    assert hashlib.sha256(A13_BODY).hexdigest() == expected


def test_square_misspelt_option_is_config_error():
    options = {"public_url": URL, "notification_url": URL}
    source = SourceConfig(name="pos", scheme="square", secrets=(KEY,), options=options)

    with pytest.raises(ConfigError, match="no option notification_url"):
        create_verifier(source)
