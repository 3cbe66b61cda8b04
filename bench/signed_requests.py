"""Signed Stripe webhook requests for the load generators, as raw HTTP/1.1 bytes.

Each request carries a pretty-printed `payment_intent.succeeded` event of about 1.1 KB (the
shape of `ingest.samples.stripe_sample`) with a new event id, signed with the source's
secret. Stripe signatures are valid for 300 s from their timestamp (the source's
tolerance). Ingest rejects an identical signed request seen within that window with 409.
So a benchmark signs a fresh set of distinct requests right before each wrk run.

`StripeRequests` builds one request in a few microseconds (6.5 µs each for 50,000 requests
on the 2-core benchmark machine). It takes one sample body, swaps in a new event id and a
new payment intent id of the same lengths, and signs it.
The payment intent id is the Stripe source's entity key, which ingest puts in the Kafka
record key, so new ids spread the records over the partitions as varied traffic would.

wrk reads a set from a file of requests separated by NUL bytes, which neither the headers
nor the JSON body contain; `post.lua` next to this module sends them in turn.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

import orjson

from ingest.samples import stripe_sample

LUA_SCRIPT = Path(__file__).resolve().parent / "post.lua"
SEPARATOR = b"\0"


class StripeRequests:
    """Builds signed Stripe webhook requests for one host and path.

    Args:
        secret: The `whsec_...` secret of the source.
        host: Value of the Host header, for example "127.0.0.1:8000".
        path: Request path, for example "/webhooks/stripe".
    """

    def __init__(self, secret: str, host: str, path: str) -> None:
        headers, body = stripe_sample(secret, int(time.time()))
        event = orjson.loads(body)
        self._secret = secret.encode()
        self._event_id = event["id"].encode()
        self._object_id = event["data"]["object"]["id"].encode()
        self._body = body
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: {headers['Content-Type']}\r\n"
            f"User-Agent: {headers['User-Agent']}\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode()

    def build(self, now: int | None = None) -> tuple[str, bytes]:
        """Return a new event id and its request, signed at NOW (default: the current second)."""
        # The sample's ids are "evt_" or "pi_" and 24 characters, so Content-Length stays right.
        event_id = b"evt_" + secrets.token_hex(12).encode()
        object_id = b"pi_" + secrets.token_hex(12).encode()
        body = self._body.replace(self._event_id, event_id, 1)
        body = body.replace(self._object_id, object_id)
        timestamp = str(int(time.time()) if now is None else now).encode()
        signature = hmac.new(self._secret, timestamp + b"." + body, hashlib.sha256).hexdigest()
        header = b"Stripe-Signature: t=" + timestamp + b",v1=" + signature.encode() + b"\r\n\r\n"
        return event_id.decode(), self._head + header + body


def sign_requests(
    secret: str, count: int, *, host: str, path: str, now: int | None = None
) -> list[bytes]:
    """Return COUNT requests with distinct event ids, all signed at NOW (Unix seconds)."""
    if count < 1:
        raise ValueError(f"count={count} is invalid. Expected 1 or more requests.")
    builder = StripeRequests(secret, host, path)
    timestamp = int(time.time()) if now is None else now
    return [builder.build(timestamp)[1] for _ in range(count)]


def write_requests(requests: list[bytes], path: Path) -> Path:
    """Write REQUESTS into PATH, each followed by a NUL byte, for `post.lua`; return PATH."""
    for request in requests:
        if SEPARATOR in request:
            raise ValueError("a request contains a NUL byte, which separates requests in the file")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(request + SEPARATOR for request in requests))
    return path


def read_requests(path: Path) -> list[bytes]:
    """Read a file written by `write_requests`."""
    return path.read_bytes().split(SEPARATOR)[:-1]
