"""Prometheus metrics of the ingest service, kept in a registry per application."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Produce latency buckets in seconds: an acks=all round trip on a healthy
# cluster takes milliseconds, and the default produce timeout is 5 s.
PRODUCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Label used instead of the path segment for sources that are not configured,
# so arbitrary URLs cannot create new time series.
UNKNOWN_SOURCE = "_unknown"


class IngestMetrics:
    """Counters and histograms of one ingest application.

    Each instance has its own `CollectorRegistry`, so several applications in
    one process (as in tests) do not collide on metric names.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "hookline_ingest_requests",
            "Webhook requests by source and HTTP response status.",
            ["source", "status"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "hookline_ingest_produce_seconds",
            "Time to produce a record to the raw topic until the broker acknowledged it "
            "or the attempt failed, in seconds.",
            ["outcome"],
            buckets=PRODUCE_BUCKETS,
            registry=self.registry,
        )
        self.rejections = Counter(
            "hookline_ingest_rejections",
            "Rejected webhook requests by source and reason code, such as rate_limited.",
            ["source", "reason"],
            registry=self.registry,
        )
        self.rejected_records_dropped = Counter(
            "hookline_ingest_rejected_records_dropped",
            "Records of rejected requests that were not written to the rejected topic.",
            registry=self.registry,
        )
        self.producer_connected = Gauge(
            "hookline_ingest_producer_connected",
            "1 when the Kafka producer is connected, else 0.",
            registry=self.registry,
        )

        # Labelled children, looked up once each, because `labels()` validates
        # and takes a lock on every call. Both key sets are small and fixed:
        # configured sources, response statuses and produce outcomes.
        self._request_counters: dict[tuple[str, int], Any] = {}
        self._produce_histograms: dict[str, Any] = {}

    def count_request(self, source: str, status: int) -> None:
        """Count one request of SOURCE whose response had STATUS."""
        counter = self._request_counters.get((source, status))
        if counter is None:
            counter = self.requests.labels(source, str(status))
            self._request_counters[(source, status)] = counter
        counter.inc()

    def observe_produce(self, outcome: str, seconds: float) -> None:
        """Record one produce attempt that ended with OUTCOME ("acked" or "failed")."""
        histogram = self._produce_histograms.get(outcome)
        if histogram is None:
            histogram = self._produce_histograms[outcome] = self.produce_seconds.labels(outcome)
        histogram.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """Return the metrics in the Prometheus text format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
