"""Timing-safe comparison in every verification scheme.

A static check parses each module of `ingest/schemes`. It fails on an `==`,
`!=`, `in` or `not in` whose operands mention a signature, digest, token,
secret, key or password. The exception is an operand compared with a public
value: a literal, a module constant in capitals, or a length. Reviewed exceptions are listed with
the reason. Behaviour tests then count `hmac.compare_digest` calls, because a
loop that stops at the first match reveals which secret matched.
"""

from __future__ import annotations

import ast
import base64
import hmac
import re
from pathlib import Path

import pytest

from hookline.config import SourceConfig
from ingest.schemes import SCHEMES, create_verifier
from ingest.schemes.base import matches_any

SCHEMES_FOLDER = Path(__file__).resolve().parent.parent / "ingest" / "schemes"
SECRET_WORDS = re.compile(
    r"signature|digest|token|secret|key|password|credential|hmac|expected|received", re.I
)
CONSTANT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
CHECKED_OPERATORS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)

# (module, comparison) pairs that were reviewed and compare no secret.
REVIEWED = {
    # A Mailgun token is a nonce sent in clear text in the body, not a secret;
    # this is the replay cache looking it up.
    ("mailgun.py", "token in self._expiry"),
    # Query parameter names of the configured public URL.
    ("twilio.py", "key == name"),
}


def _is_public(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return bool(CONSTANT_NAME.match(node.id))
    if isinstance(node, ast.Attribute):
        return bool(CONSTANT_NAME.match(node.attr))
    # The length of a received value is public: it is visible on the wire.
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def unsafe_comparisons(source: str) -> list[str]:
    """Return the comparisons in SOURCE that may compare secret-derived values with `==`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(operator, CHECKED_OPERATORS) for operator in node.ops):
            continue
        operands = [node.left, *node.comparators]
        secret = [
            op for op in operands if SECRET_WORDS.search(ast.unparse(op)) and not _is_public(op)
        ]
        others = [op for op in operands if op not in secret]
        if secret and not (others and all(_is_public(op) for op in others)):
            found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize(
    ("code", "flagged"),
    [
        pytest.param("expected == received", True, id="names"),
        pytest.param("digest.hex() != header_value", True, id="digest-call"),
        pytest.param("signature in allowed_signatures", True, id="membership"),
        pytest.param("hmac.new(k, m, sha256).hexdigest() == value", True, id="hmac-inline"),
        pytest.param("hmac.compare_digest(expected, received)", False, id="compare-digest"),
        pytest.param("key == 't'", False, id="field-name"),
        pytest.param("version == SIGNATURE_VERSION", False, id="constant"),
        pytest.param("len(signature) != SIGNATURE_BYTES", False, id="length"),
        pytest.param("count == limit", False, id="not-secret"),
    ],
)
def test_checker_flags_unsafe_comparisons(code, flagged):
    assert bool(unsafe_comparisons(code)) is flagged


@pytest.mark.parametrize("path", sorted(SCHEMES_FOLDER.glob("*.py")), ids=lambda p: p.name)
def test_scheme_module_has_no_unsafe_comparison(path):
    found = unsafe_comparisons(path.read_text())

    unreviewed = [code for code in found if (path.name, code) not in REVIEWED]
    assert unreviewed == []


def test_reviewed_exceptions_still_exist():
    # A stale entry would hide a new comparison written the same way elsewhere.
    for module, code in REVIEWED:
        assert code in unsafe_comparisons((SCHEMES_FOLDER / module).read_text())


class CountingCompare:
    """Stand-in for hmac.compare_digest that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._compare = hmac.compare_digest

    def __call__(self, a: bytes, b: bytes) -> bool:
        self.calls += 1
        return self._compare(a, b)


def test_matches_any_compares_every_pair(monkeypatch):
    counter = CountingCompare()
    monkeypatch.setattr(hmac, "compare_digest", counter)

    found = matches_any([b"match", b"other", b"third"], [b"match", b"wrong"])

    assert found
    assert counter.calls == 6


def test_basic_auth_compares_every_pair(monkeypatch):
    source = SourceConfig(
        name="basic", scheme="basic-auth", secrets=("alice:one", "bob:two", "carol:three")
    )
    verifier = create_verifier(source)
    counter = CountingCompare()
    monkeypatch.setattr(hmac, "compare_digest", counter)
    header = "Basic " + base64.b64encode(b"alice:one").decode()

    verifier.verify({"Authorization": header}, b"", now=0)

    assert counter.calls == 6


@pytest.mark.parametrize(
    ("scheme", "secrets", "options", "headers"),
    [
        pytest.param(
            "token", ("t-one", "t-two"), {}, {"Authorization": "Bearer t-one"}, id="token"
        ),
        pytest.param("gitlab", ("g-one", "g-two"), {}, {"X-Gitlab-Token": "g-one"}, id="gitlab"),
    ],
)
def test_token_schemes_compare_every_secret(monkeypatch, scheme, secrets, options, headers):
    verifier = create_verifier(
        SourceConfig(name="s", scheme=scheme, secrets=secrets, options=options)
    )
    counter = CountingCompare()
    monkeypatch.setattr(hmac, "compare_digest", counter)

    verifier.verify(headers, b"", now=0)

    assert counter.calls == len(secrets)


def test_every_scheme_module_checked():
    checked = {path.stem.replace("_", "-") for path in SCHEMES_FOLDER.glob("*.py")}
    # basic-auth lives in token.py, and the generic scheme's module is generic_hmac.py.
    assert set(SCHEMES) - {"basic-auth"} <= checked
