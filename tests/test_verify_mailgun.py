"""Unit tests of the Mailgun verifier and its token replay cache."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.samples import build_sample
from ingest.schemes import create_verifier
from ingest.schemes.mailgun import MailgunVerifier, ReplayCache
from ingest.signing import mailgun_signature_block

KEY = "test-only-mailgun-signing-key-01"
OTHER_KEY = "test-only-mailgun-signing-key-02"
T = 1767225600
TOKEN = "0123456789abcdef0123456789abcdef0123456789abcdef01"


def hex_signature(key: str, timestamp: str, token: str) -> str:
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def mailgun_body(
    key: str = KEY,
    timestamp: int | str = T,
    token: str = TOKEN,
    *,
    event: str = "delivered",
    signature: str | None = None,
) -> bytes:
    block = {
        "timestamp": str(timestamp),
        "token": token,
        "signature": hex_signature(key, str(timestamp), token) if signature is None else signature,
    }
    document = {"signature": block, "event-data": {"event": event, "id": "evt-1"}}
    return json.dumps(document).encode()


def reason_of(verifier: MailgunVerifier, body: bytes, now: float = T) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify({"Content-Type": "application/json"}, body, now=now)
    except VerificationError as error:
        assert error.status == 401
        return error.reason
    return None


def test_mailgun_valid_signature_accepted():
    assert reason_of(MailgunVerifier([KEY]), mailgun_body()) is None


def test_mailgun_wrong_key_rejected():
    assert reason_of(MailgunVerifier([KEY]), mailgun_body(key=OTHER_KEY)) == (
        "no_matching_signature"
    )


def test_mailgun_tampered_token_rejected():
    body = mailgun_body(signature=hex_signature(KEY, str(T), TOKEN)).replace(
        TOKEN.encode(), TOKEN[::-1].encode()
    )

    assert reason_of(MailgunVerifier([KEY]), body) == "no_matching_signature"


def test_mailgun_tampered_timestamp_rejected():
    body = mailgun_body(timestamp=T + 1, signature=hex_signature(KEY, str(T), TOKEN))

    assert reason_of(MailgunVerifier([KEY]), body, now=T) == "no_matching_signature"


def test_mailgun_event_data_not_signed():
    # Mailgun signs only timestamp + token, so changed event data still verifies.
    # The replay cache is what stops a captured signature from being reused.
    verifier = MailgunVerifier([KEY])
    genuine = mailgun_body(event="delivered")
    transplanted = mailgun_body(event="complained")

    assert reason_of(verifier, transplanted) is None
    assert reason_of(verifier, genuine) == "replayed_token"


def test_mailgun_replayed_token_rejected():
    verifier = MailgunVerifier([KEY])

    assert reason_of(verifier, mailgun_body(), now=T) is None
    assert reason_of(verifier, mailgun_body(), now=T + 1) == "replayed_token"
    assert reason_of(verifier, mailgun_body(), now=T + 900) == "replayed_token"


def test_mailgun_new_token_accepted_after_replay():
    verifier = MailgunVerifier([KEY])
    reason_of(verifier, mailgun_body())

    assert reason_of(verifier, mailgun_body(token=TOKEN[:-1] + "2")) is None


def test_mailgun_forged_request_does_not_record_token():
    verifier = MailgunVerifier([KEY])

    assert reason_of(verifier, mailgun_body(key=OTHER_KEY)) == "no_matching_signature"
    assert TOKEN not in verifier.replay_cache
    assert reason_of(verifier, mailgun_body()) is None


def test_mailgun_stale_request_does_not_record_token():
    verifier = MailgunVerifier([KEY])

    assert reason_of(verifier, mailgun_body(), now=T + 901) == "timestamp_outside_tolerance"
    assert len(verifier.replay_cache) == 0


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(T + 900, None, id="900s-old"),
        pytest.param(T + 901, "timestamp_outside_tolerance", id="901s-old"),
        pytest.param(T - 900, None, id="900s-ahead"),
        pytest.param(T - 901, "timestamp_outside_tolerance", id="901s-ahead"),
    ],
)
def test_mailgun_default_tolerance_900s(now, expected):
    assert reason_of(MailgunVerifier([KEY]), mailgun_body(), now=now) == expected


def test_mailgun_configured_tolerance():
    verifier = MailgunVerifier([KEY], tolerance_seconds=60)

    assert reason_of(verifier, mailgun_body(), now=T + 61) == "timestamp_outside_tolerance"


def test_mailgun_rotation_second_key_accepted():
    assert reason_of(MailgunVerifier([OTHER_KEY, KEY]), mailgun_body()) is None


def test_mailgun_numeric_timestamp_accepted():
    document = json.loads(mailgun_body())
    document["signature"]["timestamp"] = T

    assert reason_of(MailgunVerifier([KEY]), json.dumps(document).encode()) is None


def test_mailgun_upper_case_signature_rejected():
    # Mailgun sends lower-case hex; the comparison is exact, as in its examples.
    body = mailgun_body(signature=hex_signature(KEY, str(T), TOKEN).upper())

    assert reason_of(MailgunVerifier([KEY]), body) == "no_matching_signature"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"timestamp=1&token=x&signature=y", id="form-encoded"),
        pytest.param(b"[1, 2, 3]", id="array"),
        pytest.param(b'"signature"', id="string"),
        pytest.param(b'{"signature": {', id="truncated"),
        pytest.param(b"\xff\xfe{\x00}", id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
    ],
)
def test_mailgun_malformed_body_rejected(body):
    assert reason_of(MailgunVerifier([KEY]), body) == "malformed_body"


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"event-data": {}}, id="no-signature"),
        pytest.param({"signature": "abc"}, id="signature-string"),
        pytest.param({"signature": None}, id="signature-null"),
    ],
)
def test_mailgun_missing_signature_rejected(document):
    assert reason_of(MailgunVerifier([KEY]), json.dumps(document).encode()) == ("missing_signature")


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"timestamp": None}, id="timestamp-null"),
        pytest.param({"timestamp": "-1767225600"}, id="timestamp-negative-text"),
        pytest.param({"timestamp": -1}, id="timestamp-negative-number"),
        pytest.param({"timestamp": 1767225600.5}, id="timestamp-float"),
        pytest.param({"timestamp": True}, id="timestamp-bool"),
        pytest.param({"timestamp": "1767225600a"}, id="timestamp-suffix"),
        pytest.param({"timestamp": " 1767225600"}, id="timestamp-space"),
        pytest.param({"timestamp": "\u0661\u0667\u0666\u0667"}, id="timestamp-arabic-digits"),
        pytest.param({"token": ""}, id="token-empty"),
        pytest.param({"token": 12345}, id="token-number"),
        pytest.param({"signature": 12345}, id="signature-number"),
        pytest.param({"signature": None}, id="signature-null"),
    ],
)
def test_mailgun_malformed_signature_fields_rejected(changes):
    document = json.loads(mailgun_body())
    document["signature"].update(changes)

    assert reason_of(MailgunVerifier([KEY]), json.dumps(document).encode()) == (
        "malformed_signature"
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("zz" * 32, id="not-hex"),
        pytest.param("\u00e9" * 64, id="non-ascii"),
    ],
)
def test_mailgun_bad_signature_value_rejected(value):
    assert reason_of(MailgunVerifier([KEY]), mailgun_body(signature=value)) == (
        "no_matching_signature"
    )


def test_mailgun_body_without_content_type_header_verified():
    verifier = MailgunVerifier([KEY])

    verifier.verify({}, mailgun_body(), now=T)


@pytest.mark.parametrize("size", [0, -5, "1000", True, 2.5])
def test_mailgun_invalid_replay_cache_size_is_config_error(size):
    source = SourceConfig(
        name="mail", scheme="mailgun", secrets=(KEY,), options={"replay_cache_size": size}
    )

    with pytest.raises(ConfigError, match="mail.*replay_cache_size"):
        create_verifier(source)


def test_mailgun_registered_with_defaults():
    verifier = create_verifier(SourceConfig(name="mail", scheme="mailgun", secrets=(KEY,)))

    assert isinstance(verifier, MailgunVerifier)
    assert verifier.tolerance_seconds == 900
    assert verifier.replay_cache.max_tokens == 100_000


def test_mailgun_rejection_detail_reveals_no_secret():
    with pytest.raises(VerificationError) as caught:
        MailgunVerifier([KEY]).verify({}, mailgun_body(key=OTHER_KEY), now=T)

    assert KEY not in caught.value.detail
    assert hex_signature(KEY, str(T), TOKEN) not in caught.value.detail


# The replay cache on its own.


def test_replay_cache_rejects_until_expiry():
    cache = ReplayCache(max_tokens=10)

    assert cache.add("a", expires_at=100.0, now=0.0) is True
    assert cache.add("a", expires_at=100.0, now=100.0) is False
    assert cache.add("a", expires_at=200.0, now=100.5) is True
    assert len(cache) == 1


def test_replay_cache_expired_entries_removed():
    cache = ReplayCache(max_tokens=10)
    for index in range(5):
        cache.add(f"t{index}", expires_at=float(index), now=0.0)

    cache.add("new", expires_at=100.0, now=2.5)

    assert len(cache) == 3
    assert "t2" not in cache
    assert "t3" in cache


def test_replay_cache_bounded_evicts_soonest_expiry(caplog):
    cache = ReplayCache(max_tokens=3)
    cache.add("late", expires_at=300.0, now=0.0)
    cache.add("early", expires_at=100.0, now=0.0)
    cache.add("middle", expires_at=200.0, now=0.0)

    with caplog.at_level(logging.WARNING, logger="ingest.schemes.mailgun"):
        cache.add("new", expires_at=400.0, now=0.0)
        cache.add("newer", expires_at=500.0, now=0.0)

    assert len(cache) == 3
    assert "early" not in cache
    assert "middle" not in cache
    assert "late" in cache
    assert "new" in cache
    assert "newer" in cache
    warnings = [record for record in caplog.records if "replay cache is full" in record.message]
    assert len(warnings) == 1


def test_replay_cache_size_option_applied():
    verifier = MailgunVerifier([KEY], options={"replay_cache_size": 2})
    tokens = [f"{index:050d}" for index in range(3)]
    for token in tokens:
        assert reason_of(verifier, mailgun_body(token=token)) is None

    # The first token was evicted, so its replay is no longer detected.
    assert reason_of(verifier, mailgun_body(token=tokens[0])) is None
    assert reason_of(verifier, mailgun_body(token=tokens[2])) == "replayed_token"


# Samples and the signing helper.


def test_mailgun_sample_verifies_once():
    source = SourceConfig(name="mail", scheme="mailgun", secrets=(KEY,))
    verifier = create_verifier(source)

    headers, body = build_sample(source, now=T)
    _, second_body = build_sample(source, now=T)
    document = json.loads(body)

    verifier.verify(headers, body, now=T)
    verifier.verify(headers, second_body, now=T)
    with pytest.raises(VerificationError, match="replayed_token"):
        verifier.verify(headers, body, now=T)
    assert len(document["signature"]["token"]) == 50
    assert document["event-data"]["event"] == "delivered"
    assert document["event-data"]["id"] != json.loads(second_body)["event-data"]["id"]


def test_mailgun_sample_rejected_with_other_key():
    source = SourceConfig(name="mail", scheme="mailgun", secrets=(KEY,))
    other = create_verifier(SourceConfig(name="mail", scheme="mailgun", secrets=(OTHER_KEY,)))

    headers, body = build_sample(source, now=T)

    with pytest.raises(VerificationError, match="no_matching_signature"):
        other.verify(headers, body, now=T)


# Documented case A19, constructed from Mailgun's documented algorithm. The
# body, signing key, tolerance and clock are copied unchanged.

A19_BODY = (
    b'{\n  "signature": {\n    "token": "4f0d9b1c7e2a8d3f6b5c0e9a1d2f3b4c5d6e7f8091a2b3c4d5",\n'
    b'    "timestamp": "1767225600",\n'
    b'    "signature": "a36db7ef5e2607971a997a7cf0e2c32b914547e81e37721477f6eda7fc611809"\n'
    b'  },\n  "event-data": {\n    "event": "delivered",\n    "id": "CPgfbmQMTCKtHW6uIWtuVe",\n'
    b'    "timestamp": 1767225598.5,\n    "recipient": "alice@example.com",\n'
    b'    "message": {\n      "headers": {\n'
    b'        "message-id": "20260101000000.1.ABCDEF@mg.example.com"\n      }\n    }\n  }\n}'
)
A19_KEY = "corpus-fake-mailgun-signing-key-0001"
A19_TOKEN = "4f0d9b1c7e2a8d3f6b5c0e9a1d2f3b4c5d6e7f8091a2b3c4d5"
A19_NOW = 1767225620


@pytest.mark.parametrize(
    ("seen_tokens", "now", "expected"),
    [
        pytest.param([], A19_NOW, None, id="A19-constructed-vector"),
        pytest.param([A19_TOKEN], A19_NOW, "replayed_token", id="A19-token-already-seen"),
        pytest.param(["other-token"], A19_NOW, None, id="A19-other-token-seen"),
        pytest.param([], 1767225600 + 901, "timestamp_outside_tolerance", id="A19-901s-later"),
    ],
)
def test_mailgun_documented_case(seen_tokens, now, expected):
    verifier = MailgunVerifier([A19_KEY], tolerance_seconds=900)
    for token in seen_tokens:
        verifier.replay_cache.add(token, expires_at=now + 900, now=now)

    assert reason_of(verifier, A19_BODY, now=now) == expected


def test_mailgun_documented_case_replayed():
    verifier = MailgunVerifier([A19_KEY], tolerance_seconds=900)

    assert reason_of(verifier, A19_BODY, now=A19_NOW) is None
    assert reason_of(verifier, A19_BODY, now=A19_NOW + 60) == "replayed_token"


def test_mailgun_signing_helper_matches_documented_case():
    assert mailgun_signature_block(A19_KEY, 1767225600, A19_TOKEN) == {
        "timestamp": "1767225600",
        "token": A19_TOKEN,
        "signature": "a36db7ef5e2607971a997a7cf0e2c32b914547e81e37721477f6eda7fc611809",
    }


def test_mailgun_documented_body_intact():
    expected = "5297cf6f9e186be12388fe9acc6ab843e96603495e114c050a6048920804fe65"

    assert hashlib.sha256(A19_BODY).hexdigest() == expected


def test_mailgun_misspelt_option_is_config_error():
    options = {"replay_cache": 10}
    source = SourceConfig(name="mail", scheme="mailgun", secrets=(KEY,), options=options)

    with pytest.raises(ConfigError, match="no option replay_cache;"):
        create_verifier(source)
