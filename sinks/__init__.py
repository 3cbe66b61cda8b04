"""Audit sink: every delivery from Kafka into a ClickHouse audit log.

The sink consumes `webhooks.raw` (accepted deliveries) and `webhooks.rejected`
(rejected requests) in the consumer group `audit.group_id`, inserts the records
in batches through clickhouse-connect into `audit.events_table` and
`audit.rejections_table`, and commits Kafka offsets only after ClickHouse has
the rows. ClickHouse itself stores the resume point of each partition (the
maximum offset stored), so a restart after a crash leaves no row twice.

The same code talks to the embedded engine (chDB, DSN `chdb:///path`) and to a
ClickHouse server over HTTP(S). Because only one process may open a chDB data
folder, the sink also serves read-only SQL on a loopback port, and
`sinks.query.run_query` sends queries there.

Modules:

- `audit`: the consumer loop; `positions`: where partitions resume; `batch`:
  rows waiting for insert; `rows`: Kafka records as table rows; `schema`:
  table DDL; `faults`: the test-only kill hook;
- `store` and `client`: calls into ClickHouse; `dsn` and `folder`: where the
  audit log lives;
- `query_server`, `query`, `statements` and `results`: read-only SQL;
- `metrics`: Prometheus metrics; `worker`: the foreground process.
"""
