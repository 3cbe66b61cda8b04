"""Unit tests of the GitHub verifier, including documented real-world cases."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hookline.errors import VerificationError
from ingest.schemes.github import GitHubVerifier

SECRET = "test-only-github-secret"
OTHER_SECRET = "test-only-github-secret-2"
NOW = 1767225600
BODY = b'{"zen":"Design for failure.","hook_id":1}'


def sha256_header(secret: str, body: bytes) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={signature}"}


def reason_of(verifier: GitHubVerifier, headers: dict[str, str], body: bytes) -> str | None:
    """Return the rejection reason, or None when the request is accepted."""
    try:
        verifier.verify(headers, body, now=NOW)
    except VerificationError as error:
        return error.reason
    return None


def test_github_valid_signature_accepted():
    verifier = GitHubVerifier([SECRET])

    assert reason_of(verifier, sha256_header(SECRET, BODY), BODY) is None


def test_github_wrong_secret_rejected():
    verifier = GitHubVerifier([SECRET])

    assert reason_of(verifier, sha256_header(OTHER_SECRET, BODY), BODY) == "no_matching_signature"


def test_github_tampered_body_rejected():
    verifier = GitHubVerifier([SECRET])

    reason = reason_of(verifier, sha256_header(SECRET, BODY), BODY.replace(b"1", b"2"))

    assert reason == "no_matching_signature"


def test_github_missing_header_rejected():
    verifier = GitHubVerifier([SECRET])
    sha1 = hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    # The legacy SHA-1 header alone is not enough.
    headers = {"X-Hub-Signature": f"sha1={sha1}"}

    assert reason_of(verifier, headers, BODY) == "missing_header"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param(hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(), id="no-prefix"),
        pytest.param("sha1=0123456789abcdef0123456789abcdef01234567", id="sha1-prefix"),
        pytest.param("SHA256:00", id="wrong-separator"),
    ],
)
def test_github_malformed_header_rejected(value):
    verifier = GitHubVerifier([SECRET])

    assert reason_of(verifier, {"X-Hub-Signature-256": value}, BODY) == "malformed_header"


def test_github_ignores_clock():
    # GitHub signs no timestamp, so a far-off clock changes nothing.
    verifier = GitHubVerifier([SECRET])

    verifier.verify(sha256_header(SECRET, BODY), BODY, now=0)
    verifier.verify(sha256_header(SECRET, BODY), BODY, now=NOW * 2)


def test_github_rotation_second_secret_accepted():
    verifier = GitHubVerifier([OTHER_SECRET, SECRET])

    assert reason_of(verifier, sha256_header(SECRET, BODY), BODY) is None
    assert reason_of(verifier, sha256_header(OTHER_SECRET, BODY), BODY) is None
    assert reason_of(verifier, sha256_header("third", BODY), BODY) == "no_matching_signature"


@pytest.mark.parametrize(
    "name", ["x-hub-signature-256", "X-HUB-SIGNATURE-256", "X-Hub-Signature-256"]
)
def test_github_header_name_case_insensitive(name):
    verifier = GitHubVerifier([SECRET])
    headers = {name: sha256_header(SECRET, BODY)["X-Hub-Signature-256"]}

    assert reason_of(verifier, headers, BODY) is None


def test_github_non_utf8_body_verified_as_bytes():
    verifier = GitHubVerifier([SECRET])
    body = b"\x80\x81\xfe\xff" * 16

    assert reason_of(verifier, sha256_header(SECRET, body), body) is None
    assert reason_of(verifier, sha256_header(SECRET, body), body[1:]) == "no_matching_signature"


def test_github_non_ascii_signature_rejected():
    verifier = GitHubVerifier([SECRET])

    assert reason_of(verifier, {"X-Hub-Signature-256": "sha256=\u00fc\u00fc"}, BODY) == (
        "no_matching_signature"
    )


def test_github_uppercase_hex_rejected():
    # GitHub sends lower-case hex and the comparison is exact.
    verifier = GitHubVerifier([SECRET])
    value = sha256_header(SECRET, BODY)["X-Hub-Signature-256"]
    headers = {"X-Hub-Signature-256": "sha256=" + value.removeprefix("sha256=").upper()}

    assert reason_of(verifier, headers, BODY) == "no_matching_signature"


def test_github_rejection_detail_reveals_no_secret():
    verifier = GitHubVerifier([SECRET])

    with pytest.raises(VerificationError) as caught:
        verifier.verify(sha256_header(OTHER_SECRET, BODY), BODY, now=NOW)

    assert SECRET not in caught.value.detail
    assert sha256_header(SECRET, BODY)["X-Hub-Signature-256"] not in caught.value.detail


# Documented cases, with header values, bodies and secrets copied from the
# case files.

B03_BODY = (
    '{"action":"created","sponsorship":{"tier":{"name":"\U0001f680 Rocket tier",'
    '"description":"Thanks\u2026 a lot \u2014 \u00a1gracias!"},'
    '"sponsor":{"login":"example-sponsor"}}}'
).encode()
B18_BODY = (
    b"payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%2C%22hook_id%22%3A12345678%2C"
    b"%22hook%22%3A%7B%22type%22%3A%22Repository%22%2C%22config%22%3A%7B%22content_type"
    b"%22%3A%22form%22%7D%7D%2C%22repository%22%3A%7B%22full_name%22%3A%22corpus%2Fdemo%22%7D%7D"
)
CORPUS_SECRET = "corpus-fake-github-webhook-secret"


def large_push_body(files: int = 5400) -> bytes:
    """Rebuild the push payload of the large-payload case: one commit adding FILES files."""
    added = ",".join(f'"src/module_{i // 50:04d}/file_{i:04d}.py"' for i in range(files))
    return (
        '{"ref":"refs/heads/main","before":"' + "1" * 40 + '","after":"' + "2" * 40 + '",'
        '"repository":{"full_name":"corpus/monorepo"},"commits":[{"id":"' + "3" * 40 + '",'
        '"message":"vendor all the things","added":[' + added + '],"removed":[],"modified":[]}],'
        '"head_commit":{"id":"' + "3" * 40 + '"}}'
    ).encode()


CORPUS_CASES = [
    pytest.param(
        {
            "Content-Type": "application/json",
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "00000000-0000-4000-8000-000000000a01",
            "X-Hub-Signature": "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59",
            "X-Hub-Signature-256": (
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
            ),
        },
        b"Hello, World!",
        "It's a Secret to Everybody",
        None,
        id="A01-docs-example",
    ),
    pytest.param(
        {
            "Content-Type": "application/json",
            "X-GitHub-Event": "sponsorship",
            "X-GitHub-Delivery": "00000000-0000-4000-8000-0000000000b3",
            "X-Hub-Signature-256": (
                "sha256=74f95e93262d697e48395be0b46291cf7d7c24448893bf0a571c2cd771cdcfb2"
            ),
        },
        B03_BODY,
        CORPUS_SECRET,
        None,
        id="B03-emoji-utf8-body",
    ),
    pytest.param(
        {
            "Content-Type": "application/json",
            "X-GitHub-Event": "sponsorship",
            "X-GitHub-Delivery": "00000000-0000-4000-8000-0000000000b3",
            "X-Hub-Signature-256": (
                "sha256=74f95e93262d697e48395be0b46291cf7d7c24448893bf0a571c2cd771cdcfb2"
            ),
        },
        B03_BODY.decode().encode("ascii", "replace"),
        CORPUS_SECRET,
        "no_matching_signature",
        id="B03-ascii-mangled-body-rejected",
    ),
    pytest.param(
        {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "00000000-0000-4000-8000-0000000000b7",
            "X-Hub-Signature-256": (
                "sha256=779410626d23dd402d47310bf5d5879041b948311e7569514435693e1b7f78d9"
            ),
        },
        large_push_body(),
        CORPUS_SECRET,
        None,
        id="B17-large-push-payload",
    ),
    pytest.param(
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "00000000-0000-4000-8000-0000000000b8",
            "X-Hub-Signature-256": (
                "sha256=ab2508b54b1687cf1cc4d8c265ea67574139b4650b3f4fdf4b78825d16cacffa"
            ),
        },
        B18_BODY,
        CORPUS_SECRET,
        None,
        id="B18-form-urlencoded-payload",
    ),
]


@pytest.mark.parametrize(("headers", "body", "secret", "expected"), CORPUS_CASES)
def test_github_documented_case(headers, body, secret, expected):
    verifier = GitHubVerifier([secret])

    assert reason_of(verifier, headers, body) == expected


@pytest.mark.parametrize(
    ("body", "length", "sha256"),
    [
        pytest.param(
            B03_BODY,
            156,
            "ab7e2ae3576e5ea82df05a45dc4da92ff00d13287677b9ab5dbca983f8838576",
            id="B03",
        ),
        pytest.param(
            large_push_body(),
            167770,
            "15bef01644cdc42c51b2303201454e3cb2e0e36ccafe4ef4958b9a430478a083",
            id="B17",
        ),
        pytest.param(
            B18_BODY,
            256,
            "eaa0edec8d508f52a10a94203d6f8a9f2c376a2b2caaa8736b5206882bb9fb0d",
            id="B18",
        ),
    ],
)
def test_github_documented_bodies_intact(body, length, sha256):
    # Length and SHA-256 published with each case, to catch a copy error.
    assert len(body) == length
    assert hashlib.sha256(body).hexdigest() == sha256
