"""The Kafka producer of ingest: connects in the background and survives broker outages.

aiokafka's `AIOKafkaProducer.start()` fails when no broker is reachable, so
`KafkaRecordProducer` retries it with exponential backoff in a background task.
Ingest therefore starts, serves health checks and responds 503 to webhooks
while the broker is down, and starts accepting once a connection succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordTooLargeError,
    UnknownProducerId,
)

from hookline.config import KafkaConfig
from hookline.errors import BrokerUnavailableError
from ingest.kafka_logging import install_kafka_log_redaction
from ingest.ratelimit import RateLimitedLogger

logger = logging.getLogger(__name__)

# Errors after which the idempotent producer's state is unusable, so the
# producer is replaced by a new one with a new producer id.
PRODUCER_STATE_ERRORS = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
)

# Bytes per partition batch. aiokafka's default of 16 KiB fits about nine
# records of a 1 KB webhook, and a send to a full batch waits until the
# in-flight request returns. 256 KiB gave 6 % more requests per second in a
# side-by-side run on one core of a 2-vCPU machine (docs/benchmarks.md).
MAX_BATCH_BYTES = 256 * 1024


class RecordProducer(Protocol):
    """Interface of the Kafka producer that ingest uses. Tests substitute a double."""

    @property
    def connected(self) -> bool:
        """Whether a producer connection to the cluster is established."""
        ...

    async def start(self) -> None:
        """Start connecting and return without waiting for the broker."""

    async def stop(self) -> None:
        """Flush pending records within a timeout, then close."""

    async def check_ready(self) -> bool:
        """Return True when a broker is reachable now."""
        ...

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        """Produce one record and return once the broker acknowledged it.

        Raises:
            BrokerUnavailableError: when the record cannot be produced.
        """
        ...


class KafkaRecordProducer:
    """An idempotent aiokafka producer (acks=all) that reconnects in the background.

    Args:
        kafka: Broker address, client id and linger time.
        max_request_size: Largest produce request in bytes; must exceed the
            largest body a source accepts plus its headers.
        reconnect_min_seconds: First delay between connection attempts.
        reconnect_max_seconds: Maximum delay between connection attempts.
        shutdown_timeout_seconds: Maximum time `stop()` waits for pending
            records to be acknowledged, and again for the producer to close.
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        *,
        max_request_size: int = 1024 * 1024,
        reconnect_min_seconds: float = 0.5,
        reconnect_max_seconds: float = 30.0,
        shutdown_timeout_seconds: float = 10.0,
    ) -> None:
        self.kafka = kafka
        self.max_request_size = max_request_size
        self.reconnect_min_seconds = reconnect_min_seconds
        self.reconnect_max_seconds = reconnect_max_seconds
        self.shutdown_timeout_seconds = shutdown_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()
        # Delivery futures of records handed to aiokafka and not yet acknowledged.
        self._unacknowledged: set[asyncio.Future[Any]] = set()
        self._retry_log = RateLimitedLogger(logger, interval_seconds=30.0)
        install_kafka_log_redaction()

    @property
    def connected(self) -> bool:
        return self._producer is not None

    @property
    def pending(self) -> int:
        """Records handed to the producer and not yet acknowledged or failed."""
        return len(self._unacknowledged)

    async def start(self) -> None:
        """Start connecting to the broker in the background and return at once."""
        if self._connect_task is not None and not self._connect_task.done():
            return
        self._connect_task = asyncio.create_task(
            self._connect_until_started(), name="hookline-ingest-producer-connect"
        )

    async def stop(self) -> None:
        """Stop reconnecting, flush pending records within the timeout, and close.

        Records still unacknowledged when the timeout ends are dropped and
        their number is logged. uvicorn finishes in-flight requests before it
        shuts the application down, so the request of each such record already
        got a 503 response and its provider retries it.
        """
        # Step 1: stop connection attempts, so nothing new starts.
        if self._connect_task is not None:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
            self._connect_task = None

        # Step 2: detach the producer, so new sends fail at once with 503.
        producer, self._producer = self._producer, None
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)
        if producer is None:
            logger.info("Kafka producer stopped before it connected")
            return

        # Step 3: wait for records already sent to be acknowledged.
        try:
            await asyncio.wait_for(producer.flush(), self.shutdown_timeout_seconds)
        except TimeoutError:
            logger.warning(
                "Kafka producer flush timed out after %.1f s, so %d unacknowledged records "
                "are dropped",
                self.shutdown_timeout_seconds,
                self.pending,
            )

        # Step 4: close connections. An idempotent producer retries a batch
        # until the broker takes it, so closing is bounded by a timeout too.
        try:
            await asyncio.wait_for(producer.stop(), self.shutdown_timeout_seconds)
        except TimeoutError:
            logger.error(
                "Kafka producer did not close within %.1f s, so it is abandoned",
                self.shutdown_timeout_seconds,
            )
        logger.info("Kafka producer stopped")

    async def check_ready(self, timeout: float = 1.0) -> bool:
        """Return True when the producer is started and a broker accepts a connection."""
        producer = self._producer
        if producer is None:
            return False

        client = producer.client
        for broker in client.cluster.brokers():
            try:
                if await asyncio.wait_for(client.ready(broker.nodeId), timeout):
                    return True
            except (TimeoutError, KafkaError, OSError):
                continue
        return False

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        """Produce one record and return its metadata once the broker acknowledged it.

        The caller bounds the wait. If the caller stops waiting, the record may
        still be delivered later, because an idempotent producer keeps
        retrying it.

        Raises:
            BrokerUnavailableError: when the producer is not connected or the
                broker returned an error.
        """
        producer = self._producer
        if producer is None:
            raise BrokerUnavailableError(topic, "the producer is not connected to the broker")

        try:
            # send() returns once the record is in a batch; cancelling it
            # before then leaves nothing behind.
            delivery = await producer.send(topic, value=value, key=key, headers=list(headers))
            self._unacknowledged.add(delivery)
            delivery.add_done_callback(self._forget)
            # The shield keeps a caller's timeout from cancelling the delivery
            # future, so `pending` counts the record until the broker decides.
            return await asyncio.shield(delivery)
        except (MessageSizeTooLargeError, RecordTooLargeError) as error:
            # Retrying cannot help, so the message names the setting to change.
            raise BrokerUnavailableError(
                topic,
                f"a record with a {len(value)}-byte body exceeds the maximum message size "
                "(producer max_request_size or broker message.max.bytes); raise the broker's "
                "message.max.bytes or lower the source's max_body_bytes",
            ) from error
        except KafkaError as error:
            if isinstance(error, PRODUCER_STATE_ERRORS):
                self._replace(producer, error)
            raise BrokerUnavailableError(topic, f"{type(error).__name__}: {error}") from error

    def _forget(self, delivery: asyncio.Future[Any]) -> None:
        self._unacknowledged.discard(delivery)
        # Retrieve the outcome, so asyncio does not log an unretrieved exception
        # for a record whose caller stopped waiting.
        if not delivery.cancelled():
            delivery.exception()

    def _create_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.kafka.bootstrap_servers,
            client_id=self.kafka.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self.kafka.linger_ms,
            max_request_size=self.max_request_size,
            max_batch_size=MAX_BATCH_BYTES,
        )

    async def _connect_until_started(self) -> None:
        delay = self.reconnect_min_seconds
        attempt = 0
        while True:
            attempt += 1
            producer = self._create_producer()
            try:
                # start() also waits for a producer id and retries that until
                # the broker grants one, so each attempt is bounded.
                await asyncio.wait_for(producer.start(), max(self.reconnect_max_seconds, 5.0))
            except (KafkaError, OSError, TimeoutError) as error:
                await _close_quietly(producer)
                self._retry_log.warning(
                    "connect",
                    "Kafka broker %s unavailable (attempt %d: %s); retrying in %.1f s",
                    self.kafka.bootstrap_servers,
                    attempt,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_seconds)
                continue
            except asyncio.CancelledError:
                await _close_quietly(producer)
                raise

            self._producer = producer
            logger.info(
                "Kafka producer connected to %s after %d attempt(s)",
                self.kafka.bootstrap_servers,
                attempt,
            )
            return

    def _replace(self, producer: AIOKafkaProducer, error: KafkaError) -> None:
        """Retire PRODUCER after ERROR broke its idempotence state, and reconnect."""
        if self._producer is not producer:
            return
        logger.error("Kafka producer state is invalid (%r), so a new producer replaces it", error)
        self._producer = None
        retired = asyncio.create_task(_close_quietly(producer))
        self._retired.add(retired)
        retired.add_done_callback(self._retired.discard)
        self._connect_task = asyncio.create_task(
            self._connect_until_started(), name="hookline-ingest-producer-connect"
        )


async def _close_quietly(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5.0)
    except (KafkaError, OSError, TimeoutError):
        logger.exception("closing a Kafka producer failed")
