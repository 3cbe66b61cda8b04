"""A load client that sends signed webhooks to ingest the way providers do.

Each webhook is built once by `ingest.samples.build_sample`, and every retry
sends the same body and provider event id. Like Stripe and Standard Webhooks
senders, attempts of a scheme that signs a timestamp are signed again with
the current time, so ingest's replay check can distinguish a retry from a
copy. Within one second the signature is the same, so ingest returns the
original's receipt, or 409 while the original still waits for the broker.
GitHub signs only the body, so its retries are identical requests.
A webhook is retried after any non-2xx response or transport error, with a
growing delay (a Retry-After header counts, up to `max_retry_delay`), until it
gets a 2xx, runs out of attempts or passes `max_seconds` since its first
attempt. Every attempt is recorded with its start and end time
(`time.monotonic()`), so a test can compare responses with the moments a
fault began and ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import orjson

from hookline.config import HooklineConfig
from ingest.locators import EventLocator
from ingest.samples import build_sample
from ingest.signing import standard_webhooks_headers, stripe_headers

# One routing rule or default topic each, so every event goes to exactly one routed topic.
DEFAULT_SOURCES = ("stripe", "github", "standard-webhooks")


@dataclass(frozen=True)
class Webhook:
    """One provider event: its source, event id and the signed request."""

    source: str
    scheme: str
    secret: str
    event_id: str
    headers: dict[str, str]
    body: bytes

    def signed_headers(self, now: int) -> dict[str, str]:
        """Return the request headers with the signature of an attempt at NOW (Unix seconds)."""
        if self.scheme == "stripe":
            return {**self.headers, **stripe_headers(self.secret, self.body, now)}
        if self.scheme == "standard-webhooks":
            message_id = self.headers["webhook-id"]
            signature = standard_webhooks_headers(self.secret, self.body, now, message_id)
            return {**self.headers, **signature}
        return self.headers


@dataclass(frozen=True)
class Attempt:
    """One HTTP request of a webhook; STATUS is None after a transport error."""

    started: float
    ended: float
    status: int | None
    receipt_id: str | None = None
    error: str = ""
    retry_after: str | None = None
    # Unix second the attempt was signed at; two attempts of one event signed in the same second
    # are identical requests.
    signed_at: int = 0


@dataclass
class Outcome:
    """Every attempt made for one webhook, in order."""

    webhook: Webhook
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def accepted(self) -> Attempt | None:
        """The attempt that got a 2xx, or None."""
        last = self.attempts[-1] if self.attempts else None
        if last is not None and last.status is not None and 200 <= last.status < 300:
            return last
        return None


@dataclass
class LoadResult:
    """What a load run sent and what ingest returned."""

    outcomes: list[Outcome]
    seconds: float

    @property
    def accepted(self) -> list[Outcome]:
        """Webhooks that got a 2xx."""
        return [outcome for outcome in self.outcomes if outcome.accepted is not None]

    @property
    def given_up(self) -> list[Outcome]:
        """Webhooks that never got a 2xx."""
        return [outcome for outcome in self.outcomes if outcome.accepted is None]

    def statuses(self) -> Counter[str]:
        """Count of every attempt's result: the HTTP status, or the transport error type."""
        return Counter(
            str(attempt.status) if attempt.status is not None else attempt.error
            for outcome in self.outcomes
            for attempt in outcome.attempts
        )

    def attempts(self) -> list[Attempt]:
        return [attempt for outcome in self.outcomes for attempt in outcome.attempts]

    def unexplained_conflicts(self) -> int:
        """Count 409 responses not explained by another attempt of the event in the same second.

        Ingest returns 409 for a copy of a request whose original still waits
        for the broker, and attempts of one event signed in the same second
        are such copies. Any other 409 points at a wrong replay check.
        """
        signed: Counter[tuple[str, str, int]] = Counter()
        for outcome in self.outcomes:
            for attempt in outcome.attempts:
                webhook = outcome.webhook
                signed[(webhook.source, webhook.event_id, attempt.signed_at)] += 1
        unexplained = 0
        for outcome in self.outcomes:
            for attempt in outcome.attempts:
                key = (outcome.webhook.source, outcome.webhook.event_id, attempt.signed_at)
                if attempt.status == 409 and signed[key] < 2:
                    unexplained += 1
        return unexplained


def event_id_of(config: HooklineConfig, source: str, headers: dict[str, str], body: bytes) -> str:
    """Find the provider event id of a request with the source's `event_id` locator."""
    lower = {name.lower(): value for name, value in headers.items()}
    event_id = EventLocator(lower, body).find(config.sources[source].event_id)
    if event_id is None:
        raise ValueError(f"sample of {source} has no event id")
    return event_id


def make_webhooks(
    config: HooklineConfig,
    count: int,
    sources: Sequence[str] = DEFAULT_SOURCES,
    *,
    repeat_every: int = 10,
    repeat_gap: int = 900,
) -> list[Webhook]:
    """Sign COUNT distinct sample events, taking the sources in turn.

    Every REPEAT_EVERY-th event is delivered a second time REPEAT_GAP
    positions later, as a provider does when the first 2xx did not reach it,
    so the router's deduplication has repeats to drop. 0 sends no repeats.
    """
    webhooks = []
    for index in range(count):
        source = config.sources[sources[index % len(sources)]]
        headers, body = build_sample(source)
        event_id = event_id_of(config, source.name, headers, body)
        webhooks.append(
            Webhook(source.name, source.scheme, source.secrets[0], event_id, headers, body)
        )
    if not repeat_every:
        return webhooks

    positions = [(float(index), webhook) for index, webhook in enumerate(webhooks)]
    positions += [
        (index + repeat_gap + 0.5, webhooks[index]) for index in range(0, count, repeat_every)
    ]
    positions.sort(key=lambda item: item[0])
    return [webhook for _, webhook in positions]


class LoadClient:
    """Sends webhooks concurrently and retries each until a 2xx, within bounds.

    Args:
        base_url: Ingest base URL, such as http://127.0.0.1:8000.
        concurrency: Requests in flight at most.
        rate: First attempts per second at most; None sends as fast as ingest responds.
        max_attempts: Attempts per webhook at most.
        max_seconds: Seconds after its first attempt when a webhook is given up.
        max_retry_delay: Longest wait before a retry, in seconds.
        request_timeout: Seconds one request may take.
    """

    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int = 24,
        rate: float | None = None,
        max_attempts: int = 40,
        max_seconds: float = 120.0,
        max_retry_delay: float = 2.0,
        request_timeout: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.rate = rate
        self.max_attempts = max_attempts
        self.max_seconds = max_seconds
        self.max_retry_delay = max_retry_delay
        self.request_timeout = request_timeout
        self.accepted_count = 0
        self.first_attempts = 0
        # The webhooks of the current run, and an event set when each got a 2xx or was given up.
        self.webhooks: Sequence[Webhook] = ()
        self.finished = asyncio.Event()
        self._progress = asyncio.Condition()

    async def wait_accepted(self, count: int, timeout: float = 120.0) -> None:
        """Wait until COUNT webhooks got a 2xx."""
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: self.accepted_count >= count)

    async def run(self, webhooks: Sequence[Webhook]) -> LoadResult:
        """Send every webhook and return when each got a 2xx or was given up."""
        self.webhooks = webhooks
        outcomes = [Outcome(webhook) for webhook in webhooks]
        queue: asyncio.Queue[tuple[int, Outcome]] = asyncio.Queue()
        for index, outcome in enumerate(outcomes):
            queue.put_nowait((index, outcome))

        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        started = time.monotonic()
        async with httpx.AsyncClient(
            limits=limits, timeout=self.request_timeout, trust_env=False
        ) as http:
            workers = [
                asyncio.create_task(self._work(http, queue, started))
                for _ in range(self.concurrency)
            ]
            try:
                await asyncio.gather(*workers)
            finally:
                for worker in workers:
                    worker.cancel()
        self.finished.set()
        return LoadResult(outcomes, time.monotonic() - started)

    async def _work(
        self, http: httpx.AsyncClient, queue: asyncio.Queue[tuple[int, Outcome]], started: float
    ) -> None:
        while True:
            try:
                index, outcome = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if self.rate:
                # Pacing by index keeps the rate even when some webhooks wait for retries.
                await asyncio.sleep(max(0.0, started + index / self.rate - time.monotonic()))
            await self._deliver(http, outcome)

    async def _deliver(self, http: httpx.AsyncClient, outcome: Outcome) -> None:
        webhook = outcome.webhook
        url = f"{self.base_url}/webhooks/{webhook.source}"
        first = time.monotonic()
        self.first_attempts += 1
        for number in range(1, self.max_attempts + 1):
            attempt = await self._attempt(http, url, webhook)
            outcome.attempts.append(attempt)
            if outcome.accepted is not None:
                async with self._progress:
                    self.accepted_count += 1
                    self._progress.notify_all()
                return
            if time.monotonic() - first > self.max_seconds:
                return
            await asyncio.sleep(self._retry_delay(number, attempt))

    async def _attempt(self, http: httpx.AsyncClient, url: str, webhook: Webhook) -> Attempt:
        started = time.monotonic()
        signed_at = int(time.time())
        try:
            headers = webhook.signed_headers(signed_at)
            response = await http.post(url, content=webhook.body, headers=headers)
        except httpx.TransportError as error:
            error_name = type(error).__name__
            return Attempt(started, time.monotonic(), None, error=error_name, signed_at=signed_at)

        ended = time.monotonic()
        receipt_id = None
        if 200 <= response.status_code < 300:
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                receipt_id = orjson.loads(response.content).get("receipt_id")
        retry_after = response.headers.get("retry-after")
        return Attempt(
            started,
            ended,
            response.status_code,
            receipt_id,
            retry_after=retry_after,
            signed_at=signed_at,
        )

    def _retry_delay(self, number: int, attempt: Attempt) -> float:
        delay = 0.2 * 2 ** min(number - 1, 6)
        if attempt.retry_after and attempt.retry_after.isdigit():
            delay = max(delay, float(attempt.retry_after))
        # Jitter spreads retries, as providers do, so they do not arrive in waves.
        return min(delay, self.max_retry_delay) * random.uniform(0.5, 1.0)
