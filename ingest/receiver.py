"""The webhook request pipeline: client address, size, encoding, type, signature, then Kafka.

`WebhookReceiver.receive` checks a request in this order and responds with
the first status that applies:

- 404: no source of that name is configured;
- 403: the source has `allowed_networks` and the client address is in none;
- 429 with Retry-After: the source's rate limit is used up (the body is not read);
- 400 `duplicate_header`: a header the source's scheme reads is repeated;
- 400: Content-Length is invalid or the client disconnected mid-body;
- 408: the body did not arrive within `ingest.body_read_timeout_seconds`;
- 413: the body exceeds the source's `max_body_bytes`;
- 415, 400 or 413 for `Content-Encoding`: a coding other than gzip, a
  corrupt gzip body, or a decompressed body over `max_body_bytes`;
- 415: the source does not accept the media type;
- 401 (some schemes 400 or 403): the signature or token is missing,
  malformed or wrong, its timestamp is outside the tolerance, or a body field
  the scheme reads is invalid;
- a handshake reply (Slack url_verification, Zoom endpoint validation): the
  request was verified, and ingest returns the reply the provider expects
  instead of producing anything;
- an identical copy of a verified request within the source's replay window
  (see `ingest.replay`) is not produced again. It gets 200 with the
  original's receipt id once the original is stored, because providers such
  as Slack retry with the same signature and stop only at a 2xx. While the
  original still waits for the broker it gets 409 `replayed_request`. Both are
  recorded on the rejected topic;
- 503: the broker did not acknowledge the record in time;
- 200: the broker acknowledged the record.

Every rejection except the 404 and the Content-Length or disconnect 400 is
also recorded on the rejected topic. So are the 408 and 431 that the HTTP
protocol sends for a request head that is too slow or too large
(`record_head_rejection`). Responses that leave part of the body
unread (408, 413) close the connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from litestar import Request, Response

from hookline.config import HooklineConfig, SourceConfig
from hookline.errors import BrokerUnavailableError, ConfigError, VerificationError
from hookline.records import Delivery, new_receipt_id
from ingest.allowlist import NetworkAllowlist
from ingest.body import (
    BodyTooLargeError,
    ClientDisconnectedError,
    InvalidContentEncodingError,
    UnsupportedContentEncodingError,
    decode_body,
    parse_content_length,
    read_body_within,
)
from ingest.http_protocol import HeadRejection
from ingest.metrics import UNKNOWN_SOURCE, IngestMetrics
from ingest.producer import RecordProducer
from ingest.ratelimit import RateLimitedLogger
from ingest.receipts import ReceiptResponse
from ingest.rejections import RejectionRecorder
from ingest.replay import ReplayGuard, replay_window_seconds
from ingest.request_state import RequestState, read_headers, repeated_header
from ingest.schemes import Verifier, create_verifier
from ingest.schemes.base import ReplayIdentity
from ingest.token_bucket import TokenBucket, retry_after_seconds, source_bucket

logger = logging.getLogger(__name__)

# Path of the webhook route before the source name, as `ingest.app` routes it.
WEBHOOK_PATH_PREFIX = "/webhooks/"
# Sent with responses after which the rest of the request body is not read, so
# the client stops sending it and the connection is not reused.
CLOSE_CONNECTION = {"Connection": "close"}


@dataclass(frozen=True)
class ErrorBody:
    """Body of every error response. No field reveals a secret or signature."""

    error: str
    detail: str


def error_response(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response[ErrorBody]:
    """Build a JSON error response `{"error": ..., "detail": ...}`."""
    return Response(ErrorBody(error, detail), status_code=status, headers=dict(headers or {}))


def media_type(content_type: str) -> str:
    """Return the media type of a Content-Type value, lower-case and without parameters."""
    return content_type.partition(";")[0].strip().lower()


def accepts_content_type(source: SourceConfig, content_type: str, body: bytes) -> bool:
    """Return True when SOURCE accepts a body of CONTENT_TYPE.

    An empty body without Content-Type is accepted because there is nothing
    to interpret (some senders POST signed empty bodies). `*/*` in the
    source's list accepts every media type.
    """
    if not content_type.strip() and not body:
        return True
    return media_type(content_type) in source.content_types or "*/*" in source.content_types


def _allowlist(source: SourceConfig) -> NetworkAllowlist:
    try:
        return NetworkAllowlist(source.allowed_networks)
    except ConfigError as error:
        raise ConfigError(f"source {source.name!r}: {error}") from None


class WebhookReceiver:
    """Check each webhook request and hand accepted ones to Kafka.

    Args:
        config: The deployment config. Sources, topics and timeouts come from it.
        producer: The Kafka producer for the raw and rejected topics.
        metrics: Where request counts and produce latency are recorded.
        clock: Returns the current Unix time in seconds. It stamps each
            delivery and is the clock that signed timestamps are checked against.

    Raises:
        ConfigError: when a source's scheme, secrets or allowed networks are unusable.
    """

    def __init__(
        self,
        config: HooklineConfig,
        producer: RecordProducer,
        metrics: IngestMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.producer = producer
        self.metrics = metrics
        self.clock = clock
        self.verifiers: dict[str, Verifier] = {
            name: create_verifier(source) for name, source in config.sources.items()
        }
        self.allowlists = {name: _allowlist(source) for name, source in config.sources.items()}
        self.buckets: dict[str, TokenBucket] = {}
        for name, source in config.sources.items():
            bucket = source_bucket(source)
            if bucket is not None:
                self.buckets[name] = bucket
        self.replay_guards = {
            name: ReplayGuard(
                name,
                replay_window_seconds(source, self.verifiers[name]),
                config.ingest.replay_cache_max_entries,
            )
            for name, source in config.sources.items()
        }
        self.rejections = RejectionRecorder(
            producer,
            config.kafka.rejected_topic,
            metrics,
            timeout_seconds=config.kafka.produce_timeout_seconds,
        )
        self._rejection_log = RateLimitedLogger(logger, interval_seconds=10.0)
        self._broker_log = RateLimitedLogger(logger, interval_seconds=10.0)

    async def start(self) -> None:
        """Start the producer and return without waiting for the broker."""
        self.metrics.producer_connected.set_function(lambda: float(self.producer.connected))
        await self.producer.start()
        logger.info(
            "ingest started with sources %s; raw topic %s",
            ", ".join(sorted(self.config.sources)) or "(none)",
            self.config.kafka.raw_topic,
        )

    async def stop(self) -> None:
        """Send pending rejection records within the timeout, then stop the producer."""
        await self.rejections.drain(self.config.kafka.produce_timeout_seconds)
        await self.producer.stop()
        logger.info("ingest stopped")

    async def receive(self, request: Request, source_name: str) -> Response:
        """Run one webhook request through the pipeline and return the response."""
        source = self.config.sources.get(source_name)
        if source is None:
            return self._count(
                UNKNOWN_SOURCE,
                error_response(404, "unknown_source", "no webhook source with this name"),
            )

        response = await self._receive_for_source(request, source)
        return self._count(source.name, response)

    def record_head_rejection(self, rejection: HeadRejection) -> None:
        """Record a request that the HTTP protocol rejected for its head, before routing.

        The source is the configured one that the path names, else
        `UNKNOWN_SOURCE`. The record has no body and no headers, because the
        head was incomplete or over its size limit.
        """
        prefix, _, name = rejection.path.partition(WEBHOOK_PATH_PREFIX)
        source = name if not prefix and name in self.config.sources else UNKNOWN_SOURCE
        delivery = Delivery(
            receipt_id=new_receipt_id(),
            source=source,
            received_at=datetime.fromtimestamp(self.clock(), UTC),
            body=b"",
            remote_addr=rejection.remote_addr,
            status=rejection.status,
            reason=rejection.reason,
        )
        self.rejections.record(delivery)
        self.metrics.rejections.labels(source, rejection.reason).inc()
        self.metrics.count_request(source, rejection.status)
        self._rejection_log.warning(
            (source, rejection.reason),
            "rejected request for source %s from %s with %d %s (receipt %s)",
            source,
            rejection.remote_addr or "unknown address",
            rejection.status,
            rejection.reason,
            delivery.receipt_id,
        )

    async def _receive_for_source(self, request: Request, source: SourceConfig) -> Response:
        headers, repeats = read_headers(request)
        verifier = self.verifiers[source.name]
        client = request.client
        state = RequestState(
            source=source,
            received_at=datetime.fromtimestamp(self.clock(), UTC),
            headers=headers,
            remote_addr=client.host if client else "",
            repeats=repeats,
            credential_headers=verifier.credential_headers,
        )

        rejected = self._check_before_body(state, verifier)
        if rejected is not None:
            return rejected

        body = await self._read_body(request, state)
        if isinstance(body, Response):
            return body

        content_type = state.headers.get("content-type", "")
        if not accepts_content_type(source, content_type, body):
            detail = f"media type must be one of {', '.join(source.content_types)}"
            return self._reject(state, 415, "unsupported_media_type", detail, body)

        guard = self.replay_guards[source.name]
        try:
            verifier.verify(state.headers, body, now=state.received_at.timestamp())
            identity = verifier.replay_identity(state.headers, body) if guard.enabled else None
        except VerificationError as error:
            challenge = verifier.auth_challenge if error.status == 401 else None
            headers = {"WWW-Authenticate": challenge} if challenge else None
            return self._reject(state, error.status, error.reason, error.detail, body, headers)

        handshake = verifier.handshake(state.headers, body)
        if handshake is not None:
            return Response(
                handshake.body, status_code=handshake.status, media_type=handshake.content_type
            )

        return await self._store(state, body, guard, identity)

    def _check_before_body(self, state: RequestState, verifier: Verifier) -> Response | None:
        """Return the rejection of checks that need no body, or None when all pass."""
        source = state.source
        # The body of a client outside the allowlist is never read.
        if not self.allowlists[source.name].allows(state.remote_addr):
            detail = "the client address is not in the source's allowed networks"
            return self._reject(state, 403, "address_not_allowed", detail, b"")

        # Checked before the body is read, so a flood costs no body reads.
        bucket = self.buckets.get(source.name)
        wait_seconds = bucket.take() if bucket is not None else 0.0
        if wait_seconds > 0:
            retry_after = retry_after_seconds(wait_seconds)
            detail = (
                f"more than {source.rate_limit_per_second:g} requests per second for this "
                f"source; retry after {retry_after} s"
            )
            headers = {"Retry-After": str(retry_after)}
            return self._reject(state, 429, "rate_limited", detail, b"", headers)

        # A repeated signature, timestamp or id header is ambiguous, because
        # proxies and frameworks disagree on which copy counts. So it is
        # rejected with a clear reason instead of being joined and checked.
        repeated = repeated_header(state.repeats, verifier.signed_headers)
        if repeated is not None:
            detail = f"header {repeated} is repeated; send it once"
            return self._reject(state, 400, "duplicate_header", detail, b"")
        return None

    async def _store(
        self,
        state: RequestState,
        body: bytes,
        guard: ReplayGuard,
        identity: ReplayIdentity | None,
    ) -> Response:
        """Produce a verified request unless it is a replay, and return the response."""
        key = None
        if identity is not None:
            key = guard.admit(identity, body, state.received_at.timestamp())
            if key is None:
                return self._replayed(state, body, guard, identity)

        delivery = state.delivery(body)
        response = await self._produce(state, delivery)
        if key is not None and response.status_code != 200:
            # Not stored, so the provider's identical retry must be accepted.
            guard.forget(key)
        elif key is not None:
            guard.remember_receipt(key, delivery.receipt_id)
        return response

    def _replayed(
        self, state: RequestState, body: bytes, guard: ReplayGuard, identity: ReplayIdentity
    ) -> Response:
        """Record a copy of a verified request and respond without producing it again."""
        detail = (
            f"an identical signed request was received within the last {guard.window_seconds} s"
        )
        receipt_id = guard.stored_receipt(identity, body)
        if receipt_id is None:
            # The original still waits for the broker and may fail, so the
            # provider must retry later rather than count this copy as stored.
            return self._reject(state, 409, "replayed_request", detail, body)

        self._reject(state, 200, "replayed_request", detail, body)
        return ReceiptResponse(receipt_id)

    async def _read_body(self, request: Request, state: RequestState) -> bytes | Response:
        """Return the body with its Content-Encoding undone, or the error response."""
        limit = state.source.max_body_bytes
        timeout = self.config.ingest.body_read_timeout_seconds
        try:
            content_length = parse_content_length(state.headers.get("content-length"))
        except ValueError as error:
            return self._bad_request(state, "invalid_content_length", str(error))
        try:
            raw_body = await read_body_within(request.receive, limit, content_length, timeout)
        except ClientDisconnectedError as error:
            return self._bad_request(state, "client_disconnected", str(error))
        except BodyTooLargeError as error:
            detail = f"body exceeds the limit of {error.limit} bytes for this source"
            return self._reject(state, 413, "body_too_large", detail, error.head, CLOSE_CONNECTION)
        except TimeoutError:
            detail = f"the body was not received within {timeout:g} s"
            return self._reject(state, 408, "body_read_timeout", detail, b"", CLOSE_CONNECTION)

        try:
            return decode_body(raw_body, state.headers.get("content-encoding"), limit)
        except UnsupportedContentEncodingError as error:
            return self._reject(state, 415, "unsupported_content_encoding", str(error), raw_body)
        except InvalidContentEncodingError as error:
            return self._reject(state, 400, "invalid_content_encoding", str(error), raw_body)
        except BodyTooLargeError as error:
            detail = f"decompressed body exceeds the limit of {error.limit} bytes for this source"
            return self._reject(state, 413, "body_too_large", detail, error.head)

    async def _produce(self, state: RequestState, delivery: Delivery) -> Response:
        kafka = self.config.kafka
        started = time.perf_counter()
        try:
            # asyncio.timeout, unlike wait_for on Python 3.11, runs the send in
            # this task instead of wrapping it in a new one.
            async with asyncio.timeout(kafka.produce_timeout_seconds):
                await self.producer.send_and_wait(
                    kafka.raw_topic,
                    value=delivery.body,
                    key=delivery.key,
                    headers=delivery.kafka_headers(),
                )
        except (TimeoutError, BrokerUnavailableError) as error:
            # NOTE: a record that got a 503 response after a timeout can still reach the
            # topic later, because the idempotent producer keeps retrying it.
            # The provider's retry then adds a second delivery of the event,
            # which the router drops by event id.
            self.metrics.observe_produce("failed", time.perf_counter() - started)
            cause = str(error) or f"no acknowledgement within {kafka.produce_timeout_seconds} s"
            self._broker_log.warning(
                ("produce", state.source.name),
                "responding 503 for source %s, receipt %s: %s",
                state.source.name,
                delivery.receipt_id,
                cause,
            )
            retry_after = str(self.config.ingest.retry_after_seconds)
            return error_response(
                503,
                "broker_unavailable",
                "the event could not be stored; retry later",
                headers={"Retry-After": retry_after},
            )

        self.metrics.observe_produce("acked", time.perf_counter() - started)
        logger.debug(
            "stored receipt %s of source %s with event id %s on %s",
            delivery.receipt_id,
            state.source.name,
            delivery.event_id,
            kafka.raw_topic,
        )
        return ReceiptResponse(delivery.receipt_id)

    def _reject(
        self,
        state: RequestState,
        status: int,
        reason: str,
        detail: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        # Event id and type come from the whole body, but the record keeps only a prefix.
        delivery = state.delivery(body, status=status, reason=reason)
        delivery = replace(delivery, body=body[: self.config.ingest.rejected_body_max_bytes])
        self.rejections.record(delivery)
        self.metrics.rejections.labels(state.source.name, reason).inc()
        self._rejection_log.warning(
            (state.source.name, reason),
            "rejected webhook for source %s from %s with %d %s: %s (receipt %s)",
            state.source.name,
            state.remote_addr or "unknown address",
            status,
            reason,
            detail,
            delivery.receipt_id,
        )
        return error_response(status, reason, detail, headers)

    def _bad_request(self, state: RequestState, reason: str, detail: str) -> Response:
        # A malformed request is logged but not recorded: it carries no delivery.
        self.metrics.rejections.labels(state.source.name, reason).inc()
        self._rejection_log.warning(
            (state.source.name, reason),
            "bad request for source %s from %s: %s",
            state.source.name,
            state.remote_addr or "unknown address",
            detail,
        )
        return error_response(400, reason, detail)

    def _count(self, source_label: str, response: Response) -> Response:
        self.metrics.count_request(source_label, response.status_code)
        return response
