"""Read a request body from ASGI messages and undo its Content-Encoding, within a limit."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Coroutine, Generator
from typing import Any

from litestar.types import Receive

# Content codings ingest can undo. `x-gzip` is an older name of gzip that some
# senders still use.
GZIP_CODINGS = frozenset({"gzip", "x-gzip"})
IDENTITY = "identity"
# Decompressed bytes produced per step, so a gzip bomb is stopped within one
# step past the limit rather than after inflating whole.
INFLATE_STEP_BYTES = 64 * 1024


class BodyTooLargeError(Exception):
    """The request body is larger than the source allows.

    `head` is the part of the body buffered before the limit was passed. It is
    empty when Content-Length announced the size and nothing was read.
    """

    def __init__(self, limit: int, head: bytes) -> None:
        super().__init__(f"request body exceeds the limit of {limit} bytes")
        self.limit = limit
        self.head = head


class ClientDisconnectedError(Exception):
    """The client closed the connection before sending the whole body."""


class UnsupportedContentEncodingError(Exception):
    """The body is compressed with a content coding ingest cannot undo."""


class InvalidContentEncodingError(Exception):
    """The body is not valid data of the content coding its header names."""


def parse_content_length(value: str | None) -> int | None:
    """Return the Content-Length header as an int, or None when absent.

    Raises:
        ValueError: when VALUE is not a non-negative decimal integer.
    """
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"Content-Length {value!r} is not a non-negative integer")
    return int(value)


async def read_body(receive: Receive, limit: int, content_length: int | None) -> bytes:
    """Read the request body from RECEIVE, stopping as soon as it exceeds LIMIT bytes.

    A Content-Length above LIMIT is rejected before any byte is read. A body
    without Content-Length (chunked) is read message by message. The message
    that passes the limit is not kept, and no further message is read.

    Raises:
        BodyTooLargeError: when the body is larger than LIMIT.
        ClientDisconnectedError: when the client disconnects mid-body.
    """
    if content_length is not None and content_length > limit:
        raise BodyTooLargeError(limit, b"")

    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError("client disconnected before the body was complete")
        if message["type"] != "http.request":
            continue

        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(limit, b"".join(chunks))
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_body_within(
    receive: Receive, limit: int, content_length: int | None, timeout_seconds: float
) -> bytes:
    """Read the request body like `read_body`, within TIMEOUT_SECONDS.

    The body of most webhooks is complete when the application gets the
    request, so `receive` returns it without waiting. The timeout's timer is
    started only when the read has to wait for the client. Arming and
    cancelling it cost about 6 µs of CPU per request with asyncio's default
    event loop (`bench.receiver_cost` on the 2-core benchmark machine). That is
    several times the cost of reading a buffered body.

    Raises:
        TimeoutError: when the body is not complete within TIMEOUT_SECONDS.
        BodyTooLargeError: when the body is larger than LIMIT.
        ClientDisconnectedError: when the client disconnects mid-body.
    """
    reading = read_body(receive, limit, content_length)
    try:
        # Runs the read up to its first wait. A body that is already buffered ends it here.
        waiting_for = reading.send(None)
    except StopIteration as finished:
        body: bytes = finished.value
        return body

    async with asyncio.timeout(timeout_seconds):
        return await _Resumed(reading, waiting_for)


class _Resumed:
    """An awaitable that lets the running task finish a coroutine that already waits.

    `send(None)` ran COROUTINE until it yielded WAITING_FOR, the future it waits
    on. `await _Resumed(...)` passes that future to the task, as `await` would
    have, and then relays results and exceptions (cancellation included)
    between the task and the coroutine until it returns.
    """

    def __init__(self, coroutine: Coroutine[Any, Any, bytes], waiting_for: Any) -> None:
        self._coroutine = coroutine
        self._waiting_for = waiting_for

    def __await__(self) -> Generator[Any, Any, bytes]:
        coroutine = self._coroutine
        waiting_for = self._waiting_for
        while True:
            error: BaseException | None = None
            try:
                result = yield waiting_for
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as thrown:
                error = thrown
            try:
                waiting_for = coroutine.send(result) if error is None else coroutine.throw(error)
            except StopIteration as finished:
                body: bytes = finished.value
                return body


def parse_content_encoding(value: str | None) -> list[str]:
    """Return the content codings of a Content-Encoding value in the order applied.

    `identity` and empty entries are dropped, so an unencoded body gives [].

    Raises:
        UnsupportedContentEncodingError: when a coding other than gzip is named.
    """
    if value is None:
        return []
    codings = [item.strip().lower() for item in value.split(",")]
    codings = [coding for coding in codings if coding and coding != IDENTITY]
    for coding in codings:
        if coding not in GZIP_CODINGS:
            raise UnsupportedContentEncodingError(
                f"Content-Encoding {coding!r} is not supported; send gzip or an unencoded body"
            )
    return codings


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip DATA, which may hold several members, to at most LIMIT bytes.

    Output is produced in steps of at most `INFLATE_STEP_BYTES`, so memory
    stays near LIMIT whatever the compression ratio.

    Raises:
        BodyTooLargeError: when the decompressed body exceeds LIMIT, with the
            first LIMIT decompressed bytes as `head`.
        InvalidContentEncodingError: when DATA is not complete, valid gzip.
    """
    if not data:
        raise InvalidContentEncodingError("body is empty, which is not a gzip stream")

    chunks: list[bytes] = []
    size = 0
    remaining = data
    while remaining:
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        pending = remaining
        while not inflater.eof:
            try:
                chunk = inflater.decompress(pending, min(INFLATE_STEP_BYTES, limit - size + 1))
            except zlib.error as error:
                raise InvalidContentEncodingError(f"body is not valid gzip: {error}") from None
            pending = inflater.unconsumed_tail
            if not chunk and not pending and not inflater.eof:
                raise InvalidContentEncodingError("gzip stream ends before its trailer")
            size += len(chunk)
            if size > limit:
                head = b"".join(chunks) + chunk
                raise BodyTooLargeError(limit, head[:limit])
            chunks.append(chunk)
        remaining = inflater.unused_data
    return b"".join(chunks)


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo the Content-Encoding of BODY, keeping the result within LIMIT bytes.

    Codings are undone in the reverse of the order the header lists them.
    An unencoded body is returned unchanged.

    Raises:
        UnsupportedContentEncodingError: for a coding other than gzip.
        InvalidContentEncodingError: when the body is not valid gzip.
        BodyTooLargeError: when the decoded body exceeds LIMIT.
    """
    for _ in parse_content_encoding(content_encoding):
        body = gunzip(body, limit)
    return body
