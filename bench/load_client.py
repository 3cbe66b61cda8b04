"""Open-loop load client for the end-to-end benchmark: signed Stripe POSTs at a fixed rate.

A request starts every 1/rate seconds whatever the earlier ones are doing, on the first
idle keep-alive connection of a pool (it waits for one when all are busy). The client
speaks just enough HTTP/1.1 for ingest's responses (status line, Content-Length), on
uvloop, so it needs tens of microseconds per request where httpx needs milliseconds. Each
request comes from `bench.signed_requests.StripeRequests`: a new event id, signed at the
moment it is sent.

    BENCH_STRIPE_SECRET=whsec_... python -m bench.load_client --url URL --rate 200 \
        --seconds 60 --output sent.json

The output file contains one entry per request: event id, receipt id (for a 200), status,
and the Unix times when the request was written and when the response was read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import uvloop

from bench.signed_requests import StripeRequests

SECRET_ENV_VAR = "BENCH_STRIPE_SECRET"
RESPONSE_TIMEOUT_SECONDS = 30.0


@dataclass
class Sent:
    """One request: its event id, outcome and times (Unix seconds)."""

    event_id: str
    receipt_id: str | None
    status: int | str
    sent_at: float
    answered_at: float | None


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


class ConnectionPool:
    """Keep-alive connections to one host; a broken connection is replaced on next use."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = (
            asyncio.Queue()
        )
        for _ in range(size):
            self._idle.put_nowait(None)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send REQUEST on an idle connection and return the status and body."""
        connection = await self._idle.get()
        try:
            if connection is None:
                connection = await asyncio.open_connection(self.host, self.port)
            result = await asyncio.wait_for(
                _exchange(*connection, request), RESPONSE_TIMEOUT_SECONDS
            )
        except BaseException:
            if connection is not None:
                connection[1].close()
            self._idle.put_nowait(None)
            raise
        self._idle.put_nowait(connection)
        return result


async def _send_one(pool: ConnectionPool, builder: StripeRequests, log: list[Sent]) -> None:
    event_id, request = builder.build()
    sent_at = time.time()
    try:
        status, body = await pool.send(request)
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
        log.append(Sent(event_id, None, type(error).__name__, sent_at, None))
        return
    answered_at = time.time()
    receipt = orjson.loads(body).get("receipt_id") if status == 200 else None
    log.append(Sent(event_id, receipt, status, sent_at, answered_at))


async def run_load(url: str, secret: str, rate: float, seconds: float, connections: int) -> list:
    """Send RATE requests per second to URL for SECONDS; return one Sent per request."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    builder = StripeRequests(secret, f"{host}:{port}", parts.path)
    pool = ConnectionPool(host, port, connections)
    log: list[Sent] = []
    tasks: set[asyncio.Task[None]] = set()

    started = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) + 1
        while sent < due:
            task = asyncio.create_task(_send_one(pool, builder, log))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(max(0.0, sent / rate - (time.monotonic() - started)))
    if tasks:
        await asyncio.wait(tasks, timeout=RESPONSE_TIMEOUT_SECONDS)
    return log


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, send the load and write the log as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.load_client", description=__doc__)
    parser.add_argument("--url", required=True, help="webhook URL, http://host:port/webhooks/x")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True, help="length of the load")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--output", type=Path, required=True, help="JSON file for the log")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_ENV_VAR)
    if not secret:
        parser.error(f"{SECRET_ENV_VAR} is not set; export the Stripe secret that ingest checks")

    log = uvloop.run(run_load(args.url, secret, args.rate, args.seconds, args.connections))
    args.output.write_text(json.dumps([asdict(entry) for entry in log]))


if __name__ == "__main__":
    main()
