"""Loopback HTTP endpoint of the audit sink: read-only SQL and metrics.

Only the process that has a chDB data folder open can read it, so readers of
the embedded audit log send their SQL here. Routes:

- `POST /query` (or `POST /`): the body is one SQL statement (UTF-8). The
  response is `200 {"columns": [...], "rows": [[...], ...]}`, or
  `400 {"error": "..."}` with ClickHouse's message. Queries run with
  ClickHouse's `readonly=1`. Values are converted by `sinks.results`.
- `GET /metrics`: Prometheus metrics of the process.
- `GET /health`: `200 {"status": "ok"}`.

The endpoint has no authentication, so it only binds loopback addresses. It
speaks just enough HTTP/1.1 for one request per connection with a
Content-Length body.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from dataclasses import dataclass

import orjson
from clickhouse_connect.driver.exceptions import ClickHouseError
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from hookline.errors import ConfigError
from sinks.errors import QueryError
from sinks.store import AuditStore

logger = logging.getLogger(__name__)

MAX_SQL_BYTES = 1024 * 1024
MAX_HEADER_LINES = 100
# Limit of one request or header line, in bytes.
MAX_LINE_BYTES = 16 * 1024
REQUEST_TIMEOUT_SECONDS = 10.0
JSON = "application/json"
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    500: "Internal Server Error",
}


class BadRequestError(Exception):
    """The request cannot be served; `status` is the HTTP status to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    body: bytes


@dataclass(frozen=True)
class Response:
    """One HTTP response."""

    status: int
    body: bytes
    content_type: str = JSON


def check_loopback(host: str) -> None:
    """Raise ConfigError unless HOST is a loopback address or `localhost`."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"audit.query_host = {host!r} is not a loopback address; the query endpoint "
            "has no authentication, so use 127.0.0.1 or ::1"
        )


class QueryServer:
    """The sink's loopback HTTP endpoint, with async `start()` and `stop()`."""

    def __init__(self, store: AuditStore, host: str, port: int) -> None:
        check_loopback(host)
        self._store = store
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one chosen for port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen on the configured host and port; raise OSError when it is taken."""
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, limit=MAX_LINE_BYTES
        )
        logger.info("serving read-only SQL on http://%s:%d/query", self._host, self.port)

    async def stop(self) -> None:
        """Stop listening and end the requests in progress."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            response = await self._respond(reader)
            await _write_response(writer, response)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> Response:
        try:
            request = await asyncio.wait_for(_read_request(reader), REQUEST_TIMEOUT_SECONDS)
            return await self._route(request)
        except BadRequestError as error:
            return _error(error.status, str(error))
        except TimeoutError:
            return _error(408, f"request not received within {REQUEST_TIMEOUT_SECONDS:.0f} s")

    async def _route(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if path in ("/query", "/"):
            if request.method != "POST":
                raise BadRequestError(405, "send SQL with POST")
            return await self._query(request.body)
        if path == "/metrics" and request.method == "GET":
            return Response(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        if path == "/health" and request.method == "GET":
            return Response(200, orjson.dumps({"status": "ok"}))
        raise BadRequestError(404, f"no route {request.method} {path}; use POST /query")

    async def _query(self, body: bytes) -> Response:
        try:
            sql = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError(400, "the SQL is not valid UTF-8") from None

        try:
            columns, rows = await self._store.query(sql)
        except (QueryError, ClickHouseError) as error:
            # The SQL itself is not logged because it may contain personal data.
            logger.info("query rejected with 400: %.300s", error)
            return _error(400, str(error))
        except Exception as error:
            logger.exception("read-only query failed")
            return _error(500, f"query failed: {error}")
        return Response(200, orjson.dumps({"columns": columns, "rows": rows}))


async def _read_request(reader: asyncio.StreamReader) -> Request:
    try:
        request_line = (await reader.readline()).decode("latin-1").strip()
    except ValueError:
        raise BadRequestError(400, "request line too long") from None
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequestError(400, f"invalid request line {request_line[:80]!r}")
    method, path, _ = parts

    headers = await _read_headers(reader)
    if "transfer-encoding" in headers:
        raise BadRequestError(411, "chunked bodies are not supported; send Content-Length")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise BadRequestError(400, f"invalid Content-Length {length_text[:20]!r}")
    length = int(length_text)
    if length > MAX_SQL_BYTES:
        raise BadRequestError(413, f"the SQL exceeds {MAX_SQL_BYTES} bytes")
    body = await reader.readexactly(length) if length else b""
    return Request(method.upper(), path, body)


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        try:
            line = (await reader.readline()).decode("latin-1")
        except ValueError:
            raise BadRequestError(400, "header line too long") from None
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        if line in ("\r\n", "\n"):
            return headers
        name, separator, value = line.partition(":")
        if not separator:
            raise BadRequestError(400, f"invalid header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    raise BadRequestError(400, f"more than {MAX_HEADER_LINES} header lines")


async def _write_response(writer: asyncio.StreamWriter, response: Response) -> None:
    reason = REASONS.get(response.status, "Unknown")
    head = (
        f"HTTP/1.1 {response.status} {reason}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + response.body)
    await writer.drain()


def _error(status: int, message: str) -> Response:
    return Response(status, orjson.dumps({"error": message}))
