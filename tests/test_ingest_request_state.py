"""Unit tests of the header map, repeated-header check and audited headers of a request."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hookline.config import SourceConfig
from hookline.records import REDACTED, audited_headers
from ingest.request_state import RequestState, read_headers, repeated_header

HEADER_LISTS = [
    pytest.param([("Content-Type", "application/json")], id="one"),
    pytest.param(
        [("Host", "a"), ("X-Trace", "1"), ("x-trace", "2"), ("X-TRACE", "3")],
        id="repeated-mixed-case",
    ),
    pytest.param(
        [("Stripe-Signature", "t=1,v1=a"), ("stripe-signature", "t=2,v1=b")],
        id="repeated-credential",
    ),
    pytest.param(
        [("Authorization", "Basic x"), ("X-Custom-Token", "s1"), ("X-Custom-Token", "s2")],
        id="repeated-source-credential",
    ),
    pytest.param([("\xc0-Name", "\xe9"), ("\xe0-name", "v")], id="latin-1-case"),
    pytest.param([], id="none"),
]


class _Request:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.scope = {
            "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]
        }


def _state(pairs: list[tuple[str, str]], credential_headers: frozenset[str]) -> RequestState:
    headers, repeats = read_headers(_Request(pairs))  # type: ignore[arg-type]
    return RequestState(
        source=SourceConfig(name="test", scheme="stripe", secrets=("s",)),
        received_at=datetime(2024, 1, 1, tzinfo=UTC),
        headers=headers,
        remote_addr="127.0.0.1",
        repeats=repeats,
        credential_headers=credential_headers,
    )


@pytest.mark.parametrize("pairs", HEADER_LISTS)
def test_read_headers_joins_repeats(pairs):
    headers, repeats = read_headers(_Request(pairs))  # type: ignore[arg-type]

    expected: dict[str, str] = {}
    expected_repeats = []
    for name, value in pairs:
        name = name.lower()
        if name in expected:
            expected[name] += f", {value}"
            expected_repeats.append(name)
        else:
            expected[name] = value
    assert headers == expected
    assert list(headers) == list(expected)
    assert repeats == expected_repeats


@pytest.mark.parametrize("pairs", HEADER_LISTS)
def test_audited_headers_match_records(pairs):
    credential_headers = frozenset({"x-custom-token"})

    audited = _state(pairs, credential_headers).audited_headers()

    expected = audited_headers(pairs)
    for name in credential_headers & expected.keys():
        expected[name] = REDACTED
    assert audited == expected
    assert list(audited) == list(expected)


def test_audited_headers_redact_each_copy():
    state = _state([("Stripe-Signature", "a"), ("stripe-signature", "b")], frozenset())

    assert state.audited_headers() == {"stripe-signature": f"{REDACTED}, {REDACTED}"}


def test_repeated_header_returns_first_repeat():
    _, repeats = read_headers(
        _Request([("B", "1"), ("A", "1"), ("a", "2"), ("b", "2")])  # type: ignore[arg-type]
    )

    assert repeated_header(repeats, {"a", "b"}) == "a"
    assert repeated_header(repeats, {"b"}) == "b"
    assert repeated_header(repeats, {"c"}) is None
