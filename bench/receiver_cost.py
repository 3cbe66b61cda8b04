"""Time Hookline's own request handling, without HTTP server, framework or Kafka client.

`python -m bench.receiver_cost` runs `WebhookReceiver.receive` on signed Stripe requests
of the benchmark's shape (`bench.signed_requests`), with the shipped Stripe source of
`config/hookline.toml` and a producer that acknowledges at once. The result is the CPU
that ingest spends per request in its own code: header copies, signature check, replay
guard, record building and metrics. The ingest stage's "server CPU µs per request" minus
this is what uvicorn, Litestar, aiokafka and the event loop cost.

    taskset -c 0 .venv/bin/python -m bench.receiver_cost --requests 20000 --passes 3
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bench.signed_requests import StripeRequests
from hookline.config import load_config
from ingest.metrics import IngestMetrics
from ingest.receiver import WebhookReceiver

WARM_UP_REQUESTS = 200


class AckingProducer:
    """A `RecordProducer` that acknowledges every record at once and keeps none."""

    connected = True

    async def start(self) -> None:
        """Do nothing: there is no broker to connect to."""

    async def stop(self) -> None:
        """Do nothing: no record is pending."""

    async def check_ready(self) -> bool:
        """Return True: the producer is always ready."""
        return True

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        """Return at once, as if the broker acknowledged the record."""
        return None


class _Client:
    host = "127.0.0.1"


class StoredRequest:
    """The parts of a Litestar request that `WebhookReceiver.receive` reads."""

    def __init__(self, raw: bytes) -> None:
        head, _, body = raw.partition(b"\r\n\r\n")
        fields = [line.split(b": ", 1) for line in head.split(b"\r\n")[1:]]
        self.scope = {"headers": [(name.lower(), value) for name, value in fields]}
        self.client = _Client()
        self._body = body

    async def receive(self) -> dict[str, Any]:
        """Return the whole body as one ASGI message."""
        return {"type": "http.request", "body": self._body, "more_body": False}


async def measure(requests: int, passes: int) -> list[float]:
    """Return the CPU µs per request of each pass of REQUESTS requests."""
    config = load_config()
    receiver = WebhookReceiver(config, AckingProducer(), IngestMetrics())
    builder = StripeRequests(
        config.sources["stripe"].secrets[0], "127.0.0.1:8000", "/webhooks/stripe"
    )
    results = []
    for _ in range(passes):
        stored = [StoredRequest(builder.build()[1]) for _ in range(requests + WARM_UP_REQUESTS)]
        for request in stored[:WARM_UP_REQUESTS]:
            response = await receiver.receive(request, "stripe")  # type: ignore[arg-type]
            if response.status_code != 200:
                raise RuntimeError(
                    f"warm-up request failed with status {response.status_code}; "
                    "check the stripe source in config/hookline.toml"
                )
        statuses = []
        started = time.process_time()
        for request in stored[WARM_UP_REQUESTS:]:
            response = await receiver.receive(request, "stripe")  # type: ignore[arg-type]
            statuses.append(response.status_code)
        results.append((time.process_time() - started) / requests * 1e6)
        # A rejected request takes a shorter path, so only an all-200 pass is a valid result.
        if set(statuses) != {200}:
            raise RuntimeError(f"expected only status 200, got {sorted(set(statuses))}")
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Print the CPU µs per request of each pass and their minimum."""
    parser = argparse.ArgumentParser(prog="python -m bench.receiver_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per pass")
    parser.add_argument("--passes", type=int, default=3, help="passes, each with new requests")
    arguments = parser.parse_args(argv)
    results = asyncio.run(measure(arguments.requests, arguments.passes))
    print(", ".join(f"{value:.1f}" for value in results), "µs per request")
    print(f"minimum {min(results):.1f} µs per request")


if __name__ == "__main__":
    main()
