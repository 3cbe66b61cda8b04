"""Unit tests of GitHub's legacy X-Hub-Signature (SHA-1) behind the allow_sha1 option."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.schemes import create_verifier
from ingest.schemes.github import GitHubVerifier

SECRET = "test-only-github-secret"
OTHER_SECRET = "test-only-github-other"
NOW = 1767225600
BODY = b'{"zen":"Keep it logically awesome.","hook_id":1}'


def sha1_value(secret: str, body: bytes = BODY) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def sha256_value(secret: str, body: bytes = BODY) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def reason_of(verifier: GitHubVerifier, headers: dict[str, str]) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, BODY, now=NOW)
    except VerificationError as error:
        return error.reason
    return None


def allowing_sha1(*secrets: str) -> GitHubVerifier:
    return GitHubVerifier(list(secrets), options={"allow_sha1": True})


def test_github_sha1_accepted_when_allowed():
    assert reason_of(allowing_sha1(SECRET), {"X-Hub-Signature": sha1_value(SECRET)}) is None


def test_github_sha1_rejected_by_default():
    verifier = GitHubVerifier([SECRET])

    assert reason_of(verifier, {"X-Hub-Signature": sha1_value(SECRET)}) == "missing_header"


def test_github_sha1_wrong_secret_rejected():
    assert reason_of(allowing_sha1(SECRET), {"X-Hub-Signature": sha1_value(OTHER_SECRET)}) == (
        "no_matching_signature"
    )


def test_github_sha256_takes_precedence():
    # With both headers present, a wrong SHA-256 fails even beside a valid SHA-1.
    headers = {
        "X-Hub-Signature-256": sha256_value(OTHER_SECRET),
        "X-Hub-Signature": sha1_value(SECRET),
    }

    assert reason_of(allowing_sha1(SECRET), headers) == "no_matching_signature"


def test_github_both_headers_valid_accepted():
    headers = {"X-Hub-Signature-256": sha256_value(SECRET), "X-Hub-Signature": sha1_value(SECRET)}

    assert reason_of(allowing_sha1(SECRET), headers) is None


def test_github_sha1_value_with_sha256_prefix_rejected():
    digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()

    assert reason_of(allowing_sha1(SECRET), {"X-Hub-Signature": f"sha256={digest}"}) == (
        "malformed_header"
    )


def test_github_sha1_rotation():
    verifier = allowing_sha1(OTHER_SECRET, SECRET)

    assert reason_of(verifier, {"X-Hub-Signature": sha1_value(SECRET)}) is None
    assert reason_of(verifier, {"X-Hub-Signature": sha1_value(OTHER_SECRET)}) is None


def test_github_no_signature_header_missing():
    assert reason_of(allowing_sha1(SECRET), {}) == "missing_header"


def test_github_allow_sha1_from_source_config():
    source = SourceConfig(
        name="gh", scheme="github", secrets=(SECRET,), options={"allow_sha1": True}
    )

    verifier = create_verifier(source)

    assert verifier.verify({"X-Hub-Signature": sha1_value(SECRET)}, BODY, now=NOW) is None


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"allow_sha1": "yes"}, id="not-boolean"),
        pytest.param({"allow_sha": True}, id="misspelt"),
    ],
)
def test_github_bad_option_config_error(options):
    source = SourceConfig(name="gh", scheme="github", secrets=(SECRET,), options=options)

    with pytest.raises(ConfigError, match="gh"):
        create_verifier(source)
