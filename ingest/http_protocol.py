"""uvicorn's httptools protocol with a time and a size limit on each request head.

uvicorn 0.55 with httptools 0.9 has neither. Tried with a raw socket client,
an idle connection stayed open until the client closed it, and a 50 MiB header
value was buffered whole and passed to the application. So one client could
hold connections open by sending nothing, or a header byte every few seconds,
and could fill memory with one huge header.
`BoundedHttpToolsProtocol` adds:

- a head timeout: the request line and headers must arrive within
  `head_timeout_seconds` of the connection's start or of the previous
  response. A client that sends part of a head gets 408; an idle one is
  disconnected. The timer also runs while a client trickles in the rest of a
  body that ingest answered without reading (for example after a 429).
- a head size limit: more than `max_head_bytes` of request line and headers
  gets 431 and the connection is closed.

Each 408 and 431 is passed to `on_head_rejected` as a `HeadRejection`, which
ingest records on the rejected topic like its other rejections. An idle
connection closed without a response is not a rejected request and is not
passed on.

The body has its own deadline in the receiver (`IngestConfig.body_read_timeout_seconds`).

NOTE: this subclass overrides callbacks of `uvicorn.protocols.http.httptools_impl`,
which is not a public API. It was written against uvicorn 0.55 and its tests
fail if a uvicorn upgrade changes those callbacks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

DEFAULT_HEAD_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_HEAD_BYTES = 64 * 1024
# Characters of the request path kept in a `HeadRejection`. A path can be as
# long as the whole head limit.
MAX_REJECTED_PATH_CHARS = 256
HEAD_TIMEOUT_REASON = "request_head_timeout"
HEAD_TOO_LARGE_REASON = "request_head_too_large"


@dataclass(frozen=True)
class HeadRejection:
    """A request rejected before the application saw it, because of its head."""

    status: int
    reason: str
    # The request path without the query, as much of it as arrived ("" when
    # none did), cut to MAX_REJECTED_PATH_CHARS.
    path: str
    remote_addr: str


HeadRejectionHandler = Callable[[HeadRejection], None]


def _plain_response(status_line: bytes, message: bytes) -> bytes:
    return (
        status_line
        + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        + b"content-length: "
        + str(len(message)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + message
    )


HEAD_TIMEOUT_RESPONSE = _plain_response(
    b"HTTP/1.1 408 Request Timeout", b"request headers were not received in time"
)
HEAD_TOO_LARGE_RESPONSE = _plain_response(
    b"HTTP/1.1 431 Request Header Fields Too Large", b"request line and headers are too large"
)


class HeadTooLargeError(Exception):
    """Raised from a parser callback to stop parsing a request whose head is too large."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that bounds the time and bytes of each request head.

    Use `bounded_protocol()` to get a subclass with other limits.
    """

    head_timeout_seconds: ClassVar[float] = DEFAULT_HEAD_TIMEOUT_SECONDS
    max_head_bytes: ClassVar[int] = DEFAULT_MAX_HEAD_BYTES
    # Called for each 408 and 431 this class sends. With None, nothing is recorded.
    on_head_rejected: ClassVar[HeadRejectionHandler | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        # True from the connection's start, and after each complete request,
        # until the next request's headers are complete.
        self._reading_head = True
        self._head_bytes = 0
        self._head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Counted before parsing, because a chunk that completes the head can
        # carry body bytes too. So the check below applies only to a head that
        # is still incomplete after parsing.
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.max_head_bytes:
            self._reject_head(431, HEAD_TOO_LARGE_REASON, HEAD_TOO_LARGE_RESPONSE)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        # A head that arrived in one chunk is complete before `data_received`
        # can check its size, so its parsed size is checked here.
        # 4 bytes per header for the ": " and CRLF around its name and value.
        head_size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if head_size > self.max_head_bytes:
            self._head_too_large = True
            # httptools turns this into an HttpParserError, for which uvicorn
            # calls `send_400_response` and closes the connection.
            raise HeadTooLargeError(f"request head of {head_size} bytes")
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._reject_head(431, HEAD_TOO_LARGE_REASON, HEAD_TOO_LARGE_RESPONSE)
            return
        super().send_400_response(msg)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request may already be in progress, and its head is complete.
        if self.cycle is None or self.cycle.response_complete:
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        if self.transport is None or self.transport.is_closing():
            return
        self._head_timer = self.loop.call_later(self.head_timeout_seconds, self._on_head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._reading_head and self._head_bytes > 0:
            self._reject_head(408, HEAD_TIMEOUT_REASON, HEAD_TIMEOUT_RESPONSE)
            return
        self.transport.close()

    def _reject_head(self, status: int, reason: str, response: bytes) -> None:
        if self.transport.is_closing():
            return
        self._close_with(response, reason)
        handler = self.on_head_rejected
        if handler is None:
            return
        # uvicorn keeps the request target received so far in `url`.
        target = bytes(getattr(self, "url", b"") or b"")
        path = target.partition(b"?")[0][:MAX_REJECTED_PATH_CHARS].decode("latin-1")
        remote_addr = str(self.client[0]) if self.client else ""
        try:
            handler(HeadRejection(status, reason, path, remote_addr))
        except Exception:
            # The response is already sent; a failed record must not break the server.
            logger.exception("recording a %d %s rejection failed", status, reason)

    def _close_with(self, response: bytes, cause: str) -> None:
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown client"
        logger.debug("closing connection from %s: %s", client, cause)
        self._cancel_head_timer()
        self.transport.write(response)
        self.transport.close()


def bounded_protocol(
    head_timeout_seconds: float = DEFAULT_HEAD_TIMEOUT_SECONDS,
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
    on_head_rejected: HeadRejectionHandler | None = None,
) -> type[BoundedHttpToolsProtocol]:
    """Return a `BoundedHttpToolsProtocol` subclass with these limits, for uvicorn's `http`.

    ON_HEAD_REJECTED gets each 408 and 431 that the protocol sends.

    Raises:
        ValueError: when a limit is not positive.
    """
    if head_timeout_seconds <= 0 or max_head_bytes <= 0:
        raise ValueError(
            f"head timeout {head_timeout_seconds} s and head limit {max_head_bytes} bytes "
            "must both be positive"
        )
    attributes: dict[str, Any] = {
        "head_timeout_seconds": head_timeout_seconds,
        "max_head_bytes": max_head_bytes,
        # staticmethod, so the handler is not bound to the protocol instance.
        "on_head_rejected": staticmethod(on_head_rejected) if on_head_rejected else None,
    }
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), attributes)
