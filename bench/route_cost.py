"""Time a webhook request through a Litestar application in process, without server or Kafka.

`python -m bench.route_cost` calls the ASGI application directly with one HTTP scope per
signed Stripe request (`bench.signed_requests`), a `receive` that returns the whole body at
once and a `send` that keeps only the response status. `hookline` is ingest's application
for `config/hookline.toml` with a producer that acknowledges at once; `bare` is the bare
handler of `bench.apps`. The result is the CPU per request of the application and
everything below it: routing, parameter parsing, response building and, for `hookline`,
the receiver that `bench.receiver_cost` times alone. uvicorn and the Kafka client are
not included.

    taskset -c 0 .venv/bin/python -m bench.route_cost hookline --requests 20000 --passes 3
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

from litestar import Litestar

from bench.apps import create_bare_app
from bench.receiver_cost import WARM_UP_REQUESTS, AckingProducer, StoredRequest
from bench.signed_requests import StripeRequests
from hookline.config import load_config
from ingest.app import create_app

PATH = "/webhooks/stripe"
APPS = ("bare", "hookline")


class RecordedStatus:
    """An ASGI `send` that stores the status of the response start message."""

    def __init__(self) -> None:
        self.status = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]


def http_scope(request: StoredRequest) -> dict[str, Any]:
    """Return the ASGI HTTP scope that uvicorn builds for a POST of REQUEST to `PATH`."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": request.scope["headers"],
        "state": {},
    }


def create_measured_app(name: str) -> Litestar:
    """Build the application NAME (one of `APPS`) as the benchmark serves it."""
    if name == "bare":
        return create_bare_app()
    return create_app(load_config(), producer=AckingProducer())


async def measure(name: str, requests: int, passes: int) -> list[float]:
    """Return the CPU µs per request of each pass of REQUESTS requests through app NAME."""
    app = create_measured_app(name)
    config = load_config()
    builder = StripeRequests(config.sources["stripe"].secrets[0], "127.0.0.1:8000", PATH)
    send = RecordedStatus()
    results = []
    for _ in range(passes):
        stored = [StoredRequest(builder.build()[1]) for _ in range(requests + WARM_UP_REQUESTS)]
        scopes = [http_scope(request) for request in stored]
        for request, scope in zip(stored[:WARM_UP_REQUESTS], scopes, strict=False):
            await app(scope, request.receive, send)  # type: ignore[arg-type]
            if send.status != 200:
                raise RuntimeError(f"warm-up request to {name} failed with status {send.status}")

        statuses = set()
        started = time.process_time()
        for request, scope in zip(
            stored[WARM_UP_REQUESTS:], scopes[WARM_UP_REQUESTS:], strict=True
        ):
            await app(scope, request.receive, send)  # type: ignore[arg-type]
            statuses.add(send.status)
        results.append((time.process_time() - started) / requests * 1e6)
        # A rejected request takes a shorter path, so only an all-200 pass is a valid result.
        if statuses != {200}:
            raise RuntimeError(f"expected only status 200, got {sorted(statuses)}")
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Print the CPU µs per request of each pass and their minimum."""
    parser = argparse.ArgumentParser(prog="python -m bench.route_cost", description=__doc__)
    parser.add_argument("app", choices=APPS, help="application to time")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per pass")
    parser.add_argument("--passes", type=int, default=3, help="passes, each with new requests")
    arguments = parser.parse_args(argv)
    results = asyncio.run(measure(arguments.app, arguments.requests, arguments.passes))
    print(", ".join(f"{value:.1f}" for value in results), "µs per request")
    print(f"minimum {min(results):.1f} µs per request")


if __name__ == "__main__":
    main()
