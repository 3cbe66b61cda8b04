"""Prometheus metrics of the audit sink.

The sink serves them at `GET /metrics` on its loopback query port
(`audit.query_host`:`audit.query_port`). They live in prometheus-client's
default registry, so several sinks in one process share them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROWS_INSERTED = Counter(
    "hookline_audit_rows_inserted",
    "Rows inserted into the audit tables.",
    ["table"],
)
INSERT_SECONDS = Histogram(
    "hookline_audit_insert_seconds",
    "Duration of one successful insert into ClickHouse, in seconds.",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
STORE_RETRIES = Counter(
    "hookline_audit_store_retries",
    "Failed ClickHouse operations that the sink retries, by operation.",
    ["operation"],
)
PARSE_ERRORS = Counter(
    "hookline_audit_parse_errors",
    "Kafka records that could not be parsed; each is stored with parse_error set.",
    ["topic"],
)
ROWS_DROPPED = Counter(
    "hookline_audit_rows_dropped",
    "Fetched rows given up before insert (revoked partitions, shutdown timeout); "
    "they are read again from Kafka.",
)
PENDING_ROWS = Gauge(
    "hookline_audit_pending_rows",
    "Rows fetched from Kafka and waiting for insert.",
)
CONSUMER_LAG = Gauge(
    "hookline_audit_consumer_lag",
    "Records between the last stored offset and the partition's last stable offset.",
    ["topic", "partition"],
)
