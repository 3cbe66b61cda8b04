"""Read a request body from ASGI messages and undo its Content-Encoding, within a limit."""

from __future__ import annotations

import zlib

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
