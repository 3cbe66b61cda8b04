"""Unit tests of the bounded body reader and the rate-limited logger."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from ingest.body import (
    BodyTooLargeError,
    ClientDisconnectedError,
    parse_content_length,
    read_body,
    read_body_within,
)
from ingest.ratelimit import RateLimitedLogger


class Messages:
    """An ASGI receive callable that returns the given messages and counts calls."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.messages = list(messages)
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return self.messages.pop(0)


class SlowMessages(Messages):
    """Like Messages, but each call first waits DELAY seconds, as for a slow client."""

    def __init__(self, delay: float, *messages: dict[str, Any]) -> None:
        super().__init__(*messages)
        self.delay = delay

    async def __call__(self) -> dict[str, Any]:
        await asyncio.sleep(self.delay)
        return await super().__call__()


def chunk(body: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_body_reads_all_chunks():
    receive = Messages(chunk(b"ab"), chunk(b""), chunk(b"cd", more=False))

    assert await read_body(receive, limit=4, content_length=None) == b"abcd"
    assert receive.calls == 3


async def test_body_empty():
    receive = Messages({"type": "http.request"})

    assert await read_body(receive, limit=10, content_length=0) == b""


async def test_body_content_length_rejected_before_reading():
    receive = Messages(chunk(b"x" * 11, more=False))

    with pytest.raises(BodyTooLargeError) as caught:
        await read_body(receive, limit=10, content_length=11)

    assert receive.calls == 0
    assert caught.value.head == b""
    assert caught.value.limit == 10


async def test_body_stream_stops_after_limit():
    receive = Messages(chunk(b"aaaa"), chunk(b"bbbb"), chunk(b"cccc"), chunk(b"dddd", more=False))

    with pytest.raises(BodyTooLargeError) as caught:
        await read_body(receive, limit=10, content_length=None)

    # The third chunk passes the limit, so it is not kept and the fourth is never read.
    assert receive.calls == 3
    assert caught.value.head == b"aaaabbbb"


async def test_body_stream_longer_than_content_length_rejected():
    # A client that announces a small Content-Length and sends more is still bounded.
    receive = Messages(chunk(b"x" * 8), chunk(b"x" * 8, more=False))

    with pytest.raises(BodyTooLargeError):
        await read_body(receive, limit=10, content_length=4)


async def test_body_client_disconnect():
    receive = Messages(chunk(b"partial"), {"type": "http.disconnect"})

    with pytest.raises(ClientDisconnectedError):
        await read_body(receive, limit=100, content_length=None)


async def test_body_within_timeout_complete_body():
    receive = Messages(chunk(b"ab"), chunk(b"cd", more=False))

    assert await read_body_within(receive, 10, None, timeout_seconds=1.0) == b"abcd"
    assert receive.calls == 2


async def test_body_within_timeout_slow_chunks():
    receive = SlowMessages(0.01, chunk(b"ab"), chunk(b"cd", more=False))

    assert await read_body_within(receive, 10, None, timeout_seconds=5.0) == b"abcd"
    assert receive.calls == 2


async def test_body_within_timeout_expires():
    receive = SlowMessages(5.0, chunk(b"ab", more=False))

    with pytest.raises(TimeoutError):
        await read_body_within(receive, 10, None, timeout_seconds=0.05)


async def test_body_within_timeout_errors_after_wait():
    too_large = SlowMessages(0.01, chunk(b"abc"), chunk(b"defgh", more=False))
    disconnected = SlowMessages(0.01, chunk(b"abc"), {"type": "http.disconnect"})

    with pytest.raises(BodyTooLargeError):
        await read_body_within(too_large, 4, None, timeout_seconds=5.0)
    with pytest.raises(ClientDisconnectedError):
        await read_body_within(disconnected, 100, None, timeout_seconds=5.0)


async def test_body_within_timeout_cancelled():
    receive = SlowMessages(5.0, chunk(b"ab", more=False))
    reading = asyncio.ensure_future(read_body_within(receive, 10, None, timeout_seconds=10.0))
    await asyncio.sleep(0.01)

    reading.cancel()

    with pytest.raises(asyncio.CancelledError):
        await reading


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("0", 0, id="zero"),
        pytest.param(" 42 ", 42, id="spaces"),
    ],
)
def test_content_length_parsed(value, expected):
    assert parse_content_length(value) == expected


@pytest.mark.parametrize("value", ["-1", "1e3", "", "12a", "\u0661\u0662"])
def test_content_length_invalid(value):
    with pytest.raises(ValueError, match="Content-Length"):
        parse_content_length(value)


def test_rate_limited_logger_suppresses_and_counts(caplog):
    now = [100.0]
    limited = RateLimitedLogger(logging.getLogger("test.ratelimit"), 10.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="test.ratelimit")

    assert limited.warning("k", "rejected %s", "a") is True
    assert limited.warning("k", "rejected %s", "b") is False
    assert limited.warning("k", "rejected %s", "c") is False
    assert limited.warning("other", "rejected %s", "d") is True
    now[0] += 10.0
    assert limited.warning("k", "rejected %s", "e") is True

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "rejected a",
        "rejected d",
        "rejected e (2 similar messages suppressed)",
    ]
