"""Property tests: arbitrary headers and bodies give VerificationError, never another exception.

A verifier that raised anything else would turn a forged request into a 5xx.
"""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from hookline.config import SourceConfig
from hookline.errors import VerificationError
from ingest.schemes import create_verifier

NOW = 1767225600
SOURCES = [
    SourceConfig(name="shopify", scheme="shopify", secrets=("s",)),
    SourceConfig(name="slack", scheme="slack", secrets=("s",)),
    SourceConfig(name="zoom", scheme="zoom", secrets=("s",)),
    SourceConfig(name="linear", scheme="linear", secrets=("s",)),
    SourceConfig(name="intercom", scheme="intercom", secrets=("s",)),
    SourceConfig(name="typeform", scheme="typeform", secrets=("s",)),
    SourceConfig(name="paddle", scheme="paddle", secrets=("s",)),
    SourceConfig(name="gitlab", scheme="gitlab", secrets=("s",)),
    SourceConfig(
        name="gitlab-signed",
        scheme="gitlab",
        secrets=("whsec_" + base64.b64encode(b"k" * 32).decode(),),
        options={"signing": "standard-webhooks"},
    ),
    SourceConfig(name="github", scheme="github", secrets=("s",), options={"allow_sha1": True}),
    SourceConfig(
        name="generic",
        scheme="generic-hmac",
        secrets=("s",),
        options={
            "header": "X-Sig",
            "encoding": "base64",
            "prefix": "v1=",
            "signed_content": "{timestamp}.{body}",
            "timestamp_header": "X-Ts",
        },
    ),
    SourceConfig(name="token", scheme="token", secrets=("s",)),
    SourceConfig(name="basic", scheme="basic-auth", secrets=("u:p",)),
]
VERIFIERS = [create_verifier(source) for source in SOURCES]
HEADER_NAMES = [
    "x-shopify-hmac-sha256",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "linear-signature",
    "x-hub-signature",
    "x-hub-signature-256",
    "typeform-signature",
    "paddle-signature",
    "x-gitlab-token",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-sig",
    "x-ts",
    "authorization",
]
header_values = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=255), max_size=80),
    st.text(max_size=40),
    st.sampled_from(["v0=", "sha1=", "sha256=", "ts=1;h1=", "Bearer ", "Basic ", "v1,", "v1="]).map(
        lambda prefix: prefix + "AAAA"
    ),
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b'{"type":"url_verification"}',
            b'{"event":"endpoint.url_validation","payload":{"plainToken":[]}}',
            b'{"webhookTimestamp":1e400}',
            b'{"webhookTimestamp":-1}',
            b'{"webhookTimestamp":100000000000000000000000}',
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=6),
    body=bodies,
    now=st.one_of(st.just(float(NOW)), st.floats(min_value=0, max_value=4e9)),
)
def test_verifiers_raise_only_verification_error(headers, body, now):
    for verifier in VERIFIERS:
        try:
            verifier.verify(headers, body, now=now)
        except VerificationError as error:
            assert 400 <= error.status < 500
            assert error.reason


@settings(max_examples=200, deadline=None)
@given(body=bodies, headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values))
def test_handshakes_never_raise(body, headers):
    for verifier in VERIFIERS:
        reply = verifier.handshake(headers, body)
        if reply is not None:
            assert reply.status in (200, 400)
