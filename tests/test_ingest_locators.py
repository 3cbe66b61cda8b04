"""Unit tests of event id and type locators (headers and RFC 6901 JSON pointers)."""

from __future__ import annotations

import pytest

from ingest.locators import MISSING, EventLocator, resolve_pointer

# The example document of RFC 6901, section 5.
RFC_DOCUMENT = {
    "foo": ["bar", "baz"],
    "": 0,
    "a/b": 1,
    "c%d": 2,
    "e^f": 3,
    "g|h": 4,
    "i\\j": 5,
    'k"l': 6,
    " ": 7,
    "m~n": 8,
}


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        pytest.param("", RFC_DOCUMENT, id="whole-document"),
        pytest.param("/foo", ["bar", "baz"], id="member"),
        pytest.param("/foo/0", "bar", id="array-index"),
        pytest.param("/", 0, id="empty-name"),
        pytest.param("/a~1b", 1, id="escaped-slash"),
        pytest.param("/c%d", 2, id="percent"),
        pytest.param("/e^f", 3, id="caret"),
        pytest.param("/g|h", 4, id="pipe"),
        pytest.param("/i\\j", 5, id="backslash"),
        pytest.param('/k"l', 6, id="quote"),
        pytest.param("/ ", 7, id="space"),
        pytest.param("/m~0n", 8, id="escaped-tilde"),
    ],
)
def test_pointer_rfc6901_examples(pointer, expected):
    assert resolve_pointer(RFC_DOCUMENT, pointer) == expected


@pytest.mark.parametrize(
    "pointer",
    [
        pytest.param("/missing", id="missing-member"),
        pytest.param("/foo/2", id="index-past-end"),
        pytest.param("/foo/01", id="leading-zero"),
        pytest.param("/foo/-", id="end-marker"),
        pytest.param("/foo/0/deeper", id="through-a-string"),
        pytest.param("foo", id="no-leading-slash"),
    ],
)
def test_pointer_finds_nothing(pointer):
    assert resolve_pointer(RFC_DOCUMENT, pointer) is MISSING
    assert EventLocator({}, b'{"foo": ["bar", "baz"]}').find(f"json:{pointer}") is None


@pytest.mark.parametrize(
    ("body", "locator", "expected"),
    [
        pytest.param(b'{"id": "evt_1"}', "json:/id", "evt_1", id="string"),
        pytest.param(b'{"data": {"id": 42}}', "json:/data/id", "42", id="integer"),
        pytest.param(b'{"id": true}', "json:/id", None, id="boolean"),
        pytest.param(b'{"id": {"a": 1}}', "json:/id", None, id="object"),
        pytest.param(b'{"id": ""}', "json:/id", None, id="empty-string"),
        pytest.param(b'{"id": null}', "json:/id", None, id="null"),
        pytest.param(b"Hello, World!", "json:/id", None, id="not-json"),
        pytest.param(b"\xff\xfe\x00", "json:/id", None, id="not-utf8"),
        pytest.param(b"", "json:/id", None, id="empty-body"),
        pytest.param(b'["a", "b"]', "json:/1", "b", id="top-level-array"),
    ],
)
def test_locator_json_values(body, locator, expected):
    assert EventLocator({}, body).find(locator) == expected


def test_locator_header_case_insensitive():
    locator = EventLocator({"x-github-delivery": "d-1"}, b"")

    assert locator.find("header:X-GitHub-Delivery") == "d-1"
    assert locator.find("header:x-github-delivery") == "d-1"
    assert locator.find("header:X-Missing") is None


def test_locator_none_finds_nothing():
    assert EventLocator({"a": "b"}, b'{"a": "b"}').find(None) is None


def test_locator_parses_body_once(monkeypatch):
    import ingest.locators as locators

    calls = []
    original = locators.orjson.loads

    def counting_loads(data):
        calls.append(data)
        return original(data)

    monkeypatch.setattr(locators.orjson, "loads", counting_loads)
    locator = EventLocator({"webhook-id": "msg_1"}, b'{"id": "evt_1", "type": "paid"}')

    assert locator.find("header:webhook-id") == "msg_1"
    assert calls == []
    assert locator.find("json:/id") == "evt_1"
    assert locator.find("json:/type") == "paid"
    assert len(calls) == 1
