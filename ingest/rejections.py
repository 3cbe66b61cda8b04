"""Record rejected requests on the rejected topic, best-effort, for the audit log."""

from __future__ import annotations

import asyncio
import logging

from hookline.records import Delivery
from ingest.metrics import IngestMetrics
from ingest.producer import RecordProducer
from ingest.ratelimit import RateLimitedLogger

logger = logging.getLogger(__name__)


class RejectionRecorder:
    """Produce a record per rejected request without delaying the response.

    Each record is sent from a background task. A record is dropped and
    counted, and nothing is raised, in three cases. The producer is not
    connected, `max_pending` records are already in flight (for example during
    a flood of forgeries while the broker is slow), or the broker does not
    acknowledge it within `timeout_seconds`.
    """

    def __init__(
        self,
        producer: RecordProducer,
        topic: str,
        metrics: IngestMetrics,
        *,
        timeout_seconds: float,
        max_pending: int = 1000,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.metrics = metrics
        self.timeout_seconds = timeout_seconds
        self.max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()
        self._drop_log = RateLimitedLogger(logger, interval_seconds=30.0)

    @property
    def pending(self) -> int:
        """Records handed over and not yet acknowledged or dropped."""
        return len(self._tasks)

    def record(self, delivery: Delivery) -> None:
        """Queue DELIVERY for the rejected topic and return at once."""
        if not self.producer.connected:
            self._drop(delivery, "the producer is not connected")
            return
        if len(self._tasks) >= self.max_pending:
            self._drop(delivery, f"{self.max_pending} rejection records are already pending")
            return

        task = asyncio.create_task(self._send(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout_seconds: float) -> None:
        """Wait up to TIMEOUT_SECONDS for pending records, then cancel the rest."""
        if not self._tasks:
            return
        _, still_pending = await asyncio.wait(set(self._tasks), timeout=timeout_seconds)
        for task in still_pending:
            task.cancel()
        if still_pending:
            self.metrics.rejected_records_dropped.inc(len(still_pending))
            logger.warning(
                "dropped %d rejection records still pending at shutdown", len(still_pending)
            )

    async def _send(self, delivery: Delivery) -> None:
        try:
            await asyncio.wait_for(
                self.producer.send_and_wait(
                    self.topic,
                    value=delivery.body,
                    key=delivery.key,
                    headers=delivery.kafka_headers(),
                ),
                self.timeout_seconds,
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # best-effort: nothing may escape the task
            self._drop(delivery, f"{type(error).__name__}: {error}")

    def _drop(self, delivery: Delivery, cause: str) -> None:
        self.metrics.rejected_records_dropped.inc()
        self._drop_log.warning(
            "drop",
            "rejection record %s for source %s not written to %s: %s",
            delivery.receipt_id,
            delivery.source,
            self.topic,
            cause,
        )
