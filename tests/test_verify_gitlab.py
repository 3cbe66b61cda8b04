"""Unit tests of the GitLab verifier: secret token, or signing token as Standard Webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.schemes import create_verifier
from ingest.schemes.gitlab import GitLabVerifier

TOKEN = "test-only-gitlab-secret-token"
OTHER_TOKEN = "test-only-gitlab-other-token"
SIGNING_KEY = b"test-only-gitlab-signing-key-32b"
SIGNING_TOKEN = "whsec_" + base64.b64encode(SIGNING_KEY).decode()
T = 1767225600
BODY = b'{"object_kind":"push","ref":"refs/heads/main","commits":[]}'
SIGNED = {"signing": "standard-webhooks"}


def standard_headers(key: bytes = SIGNING_KEY, timestamp: int = T) -> dict[str, str]:
    message_id = "4b1c7f5e-0000-4000-8000-000000000001"
    signed = f"{message_id}.{timestamp}.".encode() + BODY
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def reason_of(
    verifier: GitLabVerifier, headers: dict[str, str], body: bytes = BODY, now: float = T
) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=now)
    except VerificationError as error:
        return error.reason
    return None


def test_gitlab_token_equal_accepted():
    assert reason_of(GitLabVerifier([TOKEN]), {"X-Gitlab-Token": TOKEN}) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(OTHER_TOKEN, id="other"),
        pytest.param(TOKEN[:-1], id="prefix-of-token"),
        pytest.param(TOKEN + "x", id="token-plus-one"),
        pytest.param(TOKEN.upper(), id="different-case"),
        pytest.param("", id="empty"),
    ],
)
def test_gitlab_token_mismatch_rejected(value):
    assert reason_of(GitLabVerifier([TOKEN]), {"X-Gitlab-Token": value}) == "no_matching_token"


def test_gitlab_token_missing_rejected():
    assert reason_of(GitLabVerifier([TOKEN]), {"X-Gitlab-Event": "Push Hook"}) == ("missing_header")


def test_gitlab_any_configured_token_accepted():
    verifier = GitLabVerifier([OTHER_TOKEN, TOKEN])

    assert reason_of(verifier, {"X-Gitlab-Token": TOKEN}) is None
    assert reason_of(verifier, {"X-Gitlab-Token": OTHER_TOKEN}) is None


def test_gitlab_token_ignores_body_and_clock():
    verifier = GitLabVerifier([TOKEN])

    assert reason_of(verifier, {"X-Gitlab-Token": TOKEN}, b"\xff anything", now=0) is None


def test_gitlab_utf8_token_matches():
    # Header bytes arrive decoded as Latin-1, and the token is compared as the bytes sent.
    token = "t\u00f6ken-\u2713"
    as_received = token.encode().decode("latin-1")

    assert reason_of(GitLabVerifier([token]), {"X-Gitlab-Token": as_received}) is None


def test_gitlab_signing_token_accepted():
    verifier = GitLabVerifier([SIGNING_TOKEN], options=SIGNED)

    assert reason_of(verifier, standard_headers()) is None
    assert verifier.tolerance_seconds == 300


def test_gitlab_signing_token_wrong_key_rejected():
    verifier = GitLabVerifier([SIGNING_TOKEN], options=SIGNED)

    assert reason_of(verifier, standard_headers(b"another-test-only-key-of-32-byte")) == (
        "no_matching_signature"
    )


def test_gitlab_signing_token_tolerance():
    verifier = GitLabVerifier([SIGNING_TOKEN], options=SIGNED)

    assert reason_of(verifier, standard_headers(), now=T + 301) == "timestamp_outside_tolerance"
    assert reason_of(verifier, standard_headers(), now=T - 301) == "timestamp_outside_tolerance"


def test_gitlab_signing_mode_ignores_secret_token():
    # In signing mode the secret token header proves nothing.
    verifier = GitLabVerifier([SIGNING_TOKEN], options=SIGNED)

    assert reason_of(verifier, {"X-Gitlab-Token": SIGNING_TOKEN}) == "missing_header"


def test_gitlab_token_mode_ignores_signature():
    verifier = GitLabVerifier([TOKEN])

    assert reason_of(verifier, standard_headers()) == "missing_header"


def test_gitlab_signing_token_not_base64_is_config_error():
    source = SourceConfig(
        name="gl", scheme="gitlab", secrets=("whsec_not base64!",), options=SIGNED
    )

    with pytest.raises(ConfigError, match="gl"):
        create_verifier(source)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"signing": "hmac"}, id="unknown-signing"),
        pytest.param({"header": "X-Token"}, id="unknown-option"),
    ],
)
def test_gitlab_bad_options_config_error(options):
    source = SourceConfig(name="gl", scheme="gitlab", secrets=(TOKEN,), options=options)

    with pytest.raises(ConfigError):
        create_verifier(source)
