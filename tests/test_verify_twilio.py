"""Unit tests of the Twilio verifier, including documented real-world cases."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar.testing import TestClient

from hookline.config import HooklineConfig, KafkaConfig, SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.app import create_app
from ingest.samples import build_sample
from ingest.schemes import create_verifier
from ingest.schemes.twilio import TwilioVerifier, form_parameters, url_variants
from ingest.signing import twilio_headers, twilio_json_url

TOKEN = "test_only_twilio_auth_token_0001"
OTHER_TOKEN = "test_only_twilio_auth_token_0002"
URL = "https://hooks.example.com/twilio/sms"
FORM = "application/x-www-form-urlencoded"
BODY = b"AccountSid=AC0001&Body=Hello+there&From=%2B15005550006&MessageSid=SM0001&To=%2B15005550001"
NOW = 1767225600


def signature(token: str, text: bytes) -> str:
    return base64.b64encode(hmac.new(token.encode(), text, hashlib.sha1).digest()).decode()


def verifier_for(url: str = URL, *tokens: str) -> TwilioVerifier:
    return TwilioVerifier(list(tokens or [TOKEN]), options={"public_url": url})


def form_headers(token: str = TOKEN, url: str = URL, body: bytes = BODY) -> dict[str, str]:
    return {"Content-Type": FORM, **twilio_headers(token, url, body)}


def rejection(
    verifier: TwilioVerifier, headers: dict[str, str], body: bytes
) -> tuple[str, int] | None:
    """Return the rejection reason and status, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=NOW)
    except VerificationError as error:
        return error.reason, error.status
    return None


def test_twilio_form_signature_accepted():
    assert rejection(verifier_for(), form_headers(), BODY) is None


def test_twilio_signed_text_is_url_and_sorted_pairs():
    # Hand-built signed text, independent of the verifier's own helpers.
    text = (
        URL + "AccountSidAC0001BodyHello thereFrom+15005550006MessageSidSM0001To+15005550001"
    ).encode()
    headers = {"Content-Type": FORM, "X-Twilio-Signature": signature(TOKEN, text)}

    assert rejection(verifier_for(), headers, BODY) is None


def test_twilio_parameter_order_irrelevant():
    reordered = (
        b"To=%2B15005550001&MessageSid=SM0001&From=%2B15005550006&Body=Hello+there"
        b"&AccountSid=AC0001"
    )

    assert rejection(verifier_for(), form_headers(body=BODY), reordered) is None


def test_twilio_wrong_token_rejected():
    assert rejection(verifier_for(), form_headers(token=OTHER_TOKEN), BODY) == (
        "no_matching_signature",
        401,
    )


def test_twilio_tampered_parameter_rejected():
    tampered = BODY.replace(b"Hello+there", b"Hello+thera")

    assert rejection(verifier_for(), form_headers(), tampered) == ("no_matching_signature", 401)


def test_twilio_added_parameter_rejected():
    assert rejection(verifier_for(), form_headers(), BODY + b"&Extra=1") == (
        "no_matching_signature",
        401,
    )


def test_twilio_missing_header_rejected():
    assert rejection(verifier_for(), {"Content-Type": FORM}, BODY) == ("missing_header", 401)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64 at all!", id="not-base64"),
        pytest.param("\u00e9\u00e9\u00e9\u00e9", id="non-ascii"),
        pytest.param("\udcff", id="lone-surrogate"),
        pytest.param("A" * 10_000, id="very-long"),
    ],
)
def test_twilio_malformed_signature_rejected(value):
    headers = {"Content-Type": FORM, "X-Twilio-Signature": value}

    assert rejection(verifier_for(), headers, BODY) == ("no_matching_signature", 401)


def test_twilio_rotation_second_token_accepted():
    verifier = verifier_for(URL, OTHER_TOKEN, TOKEN)

    assert rejection(verifier, form_headers(token=TOKEN), BODY) is None


@pytest.mark.parametrize("name", ["x-twilio-signature", "X-TWILIO-SIGNATURE"])
def test_twilio_header_name_case_insensitive(name):
    headers = {"content-type": FORM, name: form_headers()["X-Twilio-Signature"]}

    assert rejection(verifier_for(), headers, BODY) is None


def test_twilio_blank_values_signed():
    body = b"Body=&NumMedia=0&Flag"
    text = (URL + "BodyFlagNumMedia0").encode()
    headers = {"Content-Type": FORM, "X-Twilio-Signature": signature(TOKEN, text)}

    assert rejection(verifier_for(), headers, body) is None


def test_twilio_repeated_pair_counts_once():
    # twilio-python 9 signs each distinct (name, value) pair once.
    body = b"MediaUrl=b&MediaUrl=a&MediaUrl=b"
    text = (URL + "MediaUrlaMediaUrlb").encode()
    headers = {"Content-Type": FORM, "X-Twilio-Signature": signature(TOKEN, text)}

    assert rejection(verifier_for(), headers, body) is None


def test_twilio_non_utf8_form_body_verified_as_bytes():
    body = b"Body=%FF%FE+raw+\xff\xc3&From=%2B1"
    text = URL.encode() + b"Body\xff\xfe raw \xff\xc3From+1"
    headers = {"Content-Type": FORM, "X-Twilio-Signature": signature(TOKEN, text)}

    assert rejection(verifier_for(), headers, body) is None
    assert rejection(verifier_for(), headers, body.replace(b"%FE", b"%FD")) == (
        "no_matching_signature",
        401,
    )


def test_twilio_form_parameters_keep_bytes():
    assert form_parameters(b"a=%FF&b=+&c&d=%2B\xc3\xa9") == [
        (b"a", b"\xff"),
        (b"b", b" "),
        (b"c", b""),
        (b"d", b"+\xc3\xa9"),
    ]


def test_twilio_form_content_type_with_charset():
    headers = {"Content-Type": f"{FORM}; charset=utf-8", **twilio_headers(TOKEN, URL, BODY)}

    assert rejection(verifier_for(), headers, BODY) is None


# Default port: Twilio's SDKs accept the URL with and without it.


@pytest.mark.parametrize(
    ("configured", "signed"),
    [
        pytest.param(URL, "https://hooks.example.com:443/twilio/sms", id="https-port-added"),
        pytest.param("https://hooks.example.com:443/twilio/sms", URL, id="https-port-removed"),
        pytest.param("http://hooks.example.com/t", "http://hooks.example.com:80/t", id="http-80"),
        pytest.param(
            "https://u:p@h.example.com/t?a=1",
            "https://u:p@h.example.com:443/t?a=1",
            id="userinfo-kept",
        ),
        pytest.param("https://[2001:db8::1]/t", "https://[2001:db8::1]:443/t", id="ipv6-host"),
    ],
)
def test_twilio_default_port_variants_accepted(configured, signed):
    headers = form_headers(url=signed)

    assert rejection(verifier_for(configured), headers, BODY) is None


@pytest.mark.parametrize(
    ("configured", "signed"),
    [
        pytest.param(
            "https://hooks.example.com:8443/t",
            "https://hooks.example.com/t",
            id="non-default-port-kept",
        ),
        pytest.param(
            "https://hooks.example.com/t", "https://hooks.example.com:80/t", id="http-port-on-https"
        ),
        pytest.param(
            "https://hooks.example.com/t", "http://hooks.example.com/t", id="scheme-differs"
        ),
        pytest.param(
            "https://hooks.example.com/t", "https://hooks.example.com/t?a=1", id="query-differs"
        ),
    ],
)
def test_twilio_other_url_rejected(configured, signed):
    headers = form_headers(url=signed)

    assert rejection(verifier_for(configured), headers, BODY) == ("no_matching_signature", 401)


def test_twilio_url_variants():
    assert url_variants("https://h.example.com/p?q=1") == [
        "https://h.example.com/p?q=1",
        "https://h.example.com:443/p?q=1",
    ]
    assert url_variants("http://h.example.com:80/p") == [
        "http://h.example.com:80/p",
        "http://h.example.com/p",
    ]
    assert url_variants("https://h.example.com:8443/p") == ["https://h.example.com:8443/p"]


# JSON bodies: the URL carries bodySHA256 and the HMAC covers the URL alone.

JSON_BODY = b'{"event":"message.delivered","sid":"SM0001"}'


def test_twilio_json_body_hash_appended_accepted():
    headers = {
        "Content-Type": "application/json",
        **twilio_headers(TOKEN, URL, JSON_BODY, "application/json"),
    }

    assert rejection(verifier_for(), headers, JSON_BODY) is None


def test_twilio_json_url_appends_body_hash():
    digest = hashlib.sha256(JSON_BODY).hexdigest()

    assert twilio_json_url(URL, JSON_BODY) == f"{URL}?bodySHA256={digest}"
    assert twilio_json_url(f"{URL}?a=1", JSON_BODY) == f"{URL}?a=1&bodySHA256={digest}"


def test_twilio_json_body_swapped_rejected_by_signature():
    headers = {
        "Content-Type": "application/json",
        **twilio_headers(TOKEN, URL, JSON_BODY, "application/json"),
    }
    swapped = JSON_BODY.replace(b"delivered", b"failed")

    assert rejection(verifier_for(), headers, swapped) == ("no_matching_signature", 401)


def test_twilio_json_body_not_read_as_form():
    # A JSON body signed as if its text were form parameters must not verify.
    body = b"Body=forged"
    headers = {"Content-Type": "application/json", **twilio_headers(TOKEN, URL, body, FORM)}

    assert rejection(verifier_for(), headers, body) == ("no_matching_signature", 401)


def test_twilio_fixed_body_hash_url_checks_body():
    url = twilio_json_url(URL, JSON_BODY)
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Signature": signature(TOKEN, url.encode()),
    }
    verifier = verifier_for(url)

    assert rejection(verifier, headers, JSON_BODY) is None
    assert rejection(verifier, headers, JSON_BODY + b" ") == ("body_hash_mismatch", 403)


def test_twilio_fixed_hash_forgery_401():
    url = twilio_json_url(URL, JSON_BODY)
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Signature": signature(OTHER_TOKEN, url.encode()),
    }

    assert rejection(verifier_for(url), headers, b"{}") == ("no_matching_signature", 401)


# Configuration.


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="missing"),
        pytest.param({"public_url": ""}, id="empty"),
        pytest.param({"public_url": 443}, id="not-a-string"),
        pytest.param({"public_url": "/twilio/sms"}, id="relative"),
        pytest.param({"public_url": "ftp://hooks.example.com/x"}, id="ftp"),
        pytest.param({"public_url": "https://hooks.example.com:99999/x"}, id="port-out-of-range"),
        pytest.param({"public_url": "https://hooks.example.com:abc/x"}, id="port-not-a-number"),
    ],
)
def test_twilio_invalid_public_url_is_config_error(options):
    source = SourceConfig(name="sms", scheme="twilio", secrets=(TOKEN,), options=options)

    with pytest.raises(ConfigError, match="sms.*public_url"):
        create_verifier(source)


def test_twilio_without_secret_is_config_error():
    source = SourceConfig(name="sms", scheme="twilio", options={"public_url": URL})

    with pytest.raises(ConfigError, match="secret"):
        create_verifier(source)


def test_twilio_registered_with_options():
    source = SourceConfig(
        name="sms", scheme="twilio", secrets=(TOKEN,), options={"public_url": URL}
    )

    verifier = create_verifier(source)

    assert isinstance(verifier, TwilioVerifier)
    assert verifier.public_url == URL


def test_twilio_rejection_detail_reveals_no_secret():
    headers = form_headers(token=OTHER_TOKEN)

    with pytest.raises(VerificationError) as caught:
        verifier_for().verify(headers, BODY, now=NOW)

    assert TOKEN not in caught.value.detail
    assert headers["X-Twilio-Signature"] not in caught.value.detail
    assert form_headers()["X-Twilio-Signature"] not in caught.value.detail


# Samples.


def test_twilio_sample_verifies_and_varies():
    source = SourceConfig(
        name="sms", scheme="twilio", secrets=(TOKEN,), options={"public_url": URL}
    )
    other = SourceConfig(
        name="sms", scheme="twilio", secrets=(OTHER_TOKEN,), options={"public_url": URL}
    )

    headers, body = build_sample(source, now=NOW)
    second_headers, second_body = build_sample(source, now=NOW)

    create_verifier(source).verify(headers, body, now=NOW)
    with pytest.raises(VerificationError):
        create_verifier(other).verify(headers, body, now=NOW)
    assert headers["Content-Type"] == FORM
    assert b"MessageSid=SM" in body
    assert body != second_body
    assert headers["I-Twilio-Idempotency-Token"] != second_headers["I-Twilio-Idempotency-Token"]


def test_twilio_sample_without_public_url_is_config_error():
    source = SourceConfig(name="sms", scheme="twilio", secrets=(TOKEN,))

    with pytest.raises(ConfigError, match="public_url"):
        build_sample(source, now=NOW)


# Documented cases: A08 and A09 are twilio-python's RequestValidator test
# vectors, B07 (TLS ends at a proxy) and B08 (JSON body swapped under a
# genuine URL signature) reproduce reported failures. Header values, bodies,
# tokens and URLs are copied unchanged. Twilio signs no timestamp, so the
# clock does not matter.

A08_BODY = (
    b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212"
    b"&Caller=%2B14158675309"
)
A09_BODY = b'{"property": "value", "boolean": true}'
A09_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
B07_BODY = (
    b"AccountSid=AC00000000000000000000000000000001&Body=Hello+from+the+corpus"
    b"&From=%2B15005550006&MessageSid=SM00000000000000000000000000000007&NumMedia=0"
    b"&To=%2B15005550001"
)
B08_BODY = b'{"event":"message.delivered","sid":"SM99999999999999999999999999999999"}'
B08_HASH = "5b7d771205f9d86acd27a221e358d4d4e889d61e78ff701abda74faa980cbd60"
CORPUS_TOKEN = "corpus_fake_twilio_auth_token_01"
B07_HEADERS = {
    "Host": "10.0.0.5:8080",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "hooks.example.com",
    "Content-Type": "application/x-www-form-urlencoded",
    "X-Twilio-Signature": "71Jk2kE++oxBXuEIC/EjKR1QVXE=",
}
B08_HEADERS = {
    "Content-Type": "application/json",
    "X-Twilio-Signature": "G3e7vWkOFC+mcUZmhvnfSlHzcAQ=",
}

CORPUS_CASES = [
    pytest.param(
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        },
        A08_BODY,
        "12345",
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        None,
        id="A08-form-sdk-vector",
    ),
    pytest.param(
        {"Content-Type": "application/json", "X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="},
        A09_BODY,
        "12345",
        f"https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={A09_HASH}",
        None,
        id="A09-json-body-hash-sdk-vector",
    ),
    pytest.param(
        {"Content-Type": "application/json", "X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="},
        A09_BODY,
        "12345",
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        None,
        id="A09-body-hash-appended-to-configured-url",
    ),
    pytest.param(
        B07_HEADERS,
        B07_BODY,
        CORPUS_TOKEN,
        "https://hooks.example.com/twilio/sms",
        None,
        id="B07-configured-public-url",
    ),
    pytest.param(
        B07_HEADERS,
        B07_BODY,
        CORPUS_TOKEN,
        "http://10.0.0.5:8080/twilio/sms",
        ("no_matching_signature", 401),
        id="B07-url-seen-by-app-rejected",
    ),
    pytest.param(
        B08_HEADERS,
        B08_BODY,
        CORPUS_TOKEN,
        f"https://hooks.example.com/twilio/events?bodySHA256={B08_HASH}",
        ("body_hash_mismatch", 403),
        id="B08-json-body-swapped",
    ),
    pytest.param(
        B08_HEADERS,
        B08_BODY,
        CORPUS_TOKEN,
        "https://hooks.example.com/twilio/events",
        ("no_matching_signature", 401),
        id="B08-body-swapped-hash-appended",
    ),
]


@pytest.mark.parametrize(("headers", "body", "token", "public_url", "expected"), CORPUS_CASES)
def test_twilio_documented_case(headers, body, token, public_url, expected):
    verifier = verifier_for(public_url, token)

    assert rejection(verifier, headers, body) == expected


def test_twilio_b08_url_signature_itself_genuine():
    # The B08 signature is valid for its URL, so only the body check rejects it.
    url = f"https://hooks.example.com/twilio/events?bodySHA256={B08_HASH}"

    assert signature(CORPUS_TOKEN, url.encode()) == B08_HEADERS["X-Twilio-Signature"]


def test_twilio_signing_helper_matches_sdk_vectors():
    assert twilio_headers("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", A08_BODY) == {
        "X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    }
    json_headers = twilio_headers(
        "12345", "https://mycompany.com/myapp.php?foo=1&bar=2", A09_BODY, "application/json"
    )
    assert json_headers == {"X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="}


def test_twilio_documented_bodies_intact():
    # SHA-256 of each body as published with its case, to catch a copy error.
    expected = {
        "A08": "7ff5f5e8aa2f59e9e4958d3779bcfedc75baf44652736a1c49a7a2371f0717ab",
        "A09": A09_HASH,
        "B07": "8296d5354741f67f617d8985898ff1341a8193509a11f47af1862183df0799a0",
        "B08": "fc362dbb24fa12dacdf30b0d1804c7275761716843d6a2f208468188a7963057",
    }
    bodies = {"A08": A08_BODY, "A09": A09_BODY, "B07": B07_BODY, "B08": B08_BODY}

    for case, body in bodies.items():
        assert hashlib.sha256(body).hexdigest() == expected[case], case


# Through the ingest application, with a test double for Kafka.


@dataclass
class MemoryProducer:
    """Test double of RecordProducer that keeps produced values in memory."""

    values: list[bytes] = field(default_factory=list)
    connected: bool = True

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def check_ready(self) -> bool:
        return True

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        if topic == "test.raw":
            self.values.append(value)
        return object()


def corpus_client(producer: MemoryProducer, public_url: str) -> TestClient:
    source = SourceConfig(
        name="twilio",
        scheme="twilio",
        secrets=(CORPUS_TOKEN,),
        content_types=("application/x-www-form-urlencoded", "application/json"),
        options={"public_url": public_url},
    )
    config = HooklineConfig(
        kafka=KafkaConfig(raw_topic="test.raw", rejected_topic="test.rejected"),
        sources={"twilio": source},
    )
    return TestClient(create_app(config, producer=producer))


def test_twilio_app_proxy_request_stored():
    # B07: the request arrives at the internal host with forwarded headers, which are ignored.
    producer = MemoryProducer()
    with corpus_client(producer, "https://hooks.example.com/twilio/sms") as client:
        response = client.post("/webhooks/twilio", content=B07_BODY, headers=B07_HEADERS)

    assert response.status_code == 200
    assert "receipt_id" in response.json()
    assert producer.values == [B07_BODY]


def test_twilio_app_swapped_json_body_403():
    producer = MemoryProducer()
    url = f"https://hooks.example.com/twilio/events?bodySHA256={B08_HASH}"
    with corpus_client(producer, url) as client:
        response = client.post(
            f"/webhooks/twilio?bodySHA256={B08_HASH}", content=B08_BODY, headers=B08_HEADERS
        )

    assert response.status_code == 403
    assert response.json()["error"] == "body_hash_mismatch"
    assert producer.values == []


def test_twilio_misspelt_option_is_config_error():
    options = {"public_url": URL, "publc_url": URL}
    source = SourceConfig(name="sms", scheme="twilio", secrets=(TOKEN,), options=options)

    with pytest.raises(ConfigError, match="no option publc_url"):
        create_verifier(source)
