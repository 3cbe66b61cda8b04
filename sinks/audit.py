"""The audit sink: each Kafka record of the raw and rejected topics as one ClickHouse row.

How a restart avoids duplicates without FINAL or ReplacingMergeTree merges:

1. ClickHouse is the offset store. On assignment a partition stays paused
   until the sink has read max(offset) of its rows from the table and sought
   to the next offset (never before the committed offset, and to the start of
   the log when there is neither). Rows are inserted per Kafka partition in
   offset order, each insert normally one atomic part (see `sinks.schema`),
   so the stored rows of a partition are a prefix of its records.
2. Kafka commits follow inserts and serve lag monitoring only. A SIGKILL
   between insert and commit costs nothing: the restart resumes after the
   last stored row.
3. A failed insert may still have landed (for example when the HTTP response
   is lost). Before retrying it, the sink reads max(offset) again and drops
   the rows already stored, and each insert carries the deduplication token
   `<topic>:<partition>:<first offset>:<last offset>` as a second guard.
4. On revocation the sink waits for the insert in progress and drops the
   partition's unstored rows, so the next owner reads them from Kafka.

NOTE: nothing fences a sink that stalls past the group's session timeout
without running its revoke callback (a process stopped and resumed, say). An
insert it then completes can land after the next owner read max(offset), and
those rows are stored twice unless both batches had the same offsets.

While ClickHouse is unavailable the sink keeps its batch, pauses every
partition (fetching nothing more, so memory stays bounded), keeps polling the
consumer so it stays in the group, and retries with growing delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from clickhouse_connect.driver.exceptions import ClickHouseError

from hookline.config import HooklineConfig
from hookline.errors import ConfigError
from sinks import metrics
from sinks.batch import PendingBatch
from sinks.dsn import normalize_dsn, redact_dsn
from sinks.errors import DataFolderLockedError
from sinks.faults import InsertKillSwitch
from sinks.positions import resume_positions
from sinks.query_server import QueryServer
from sinks.rows import RowBuilder, event_row, rejection_row
from sinks.schema import EVENT_COLUMNS, REJECTION_COLUMNS, check_table_name
from sinks.store import AuditStore

logger = logging.getLogger(__name__)

BACKOFF_INITIAL_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 30.0
# Maximum getmany() wait, so that stop() takes effect quickly.
IDLE_POLL_SECONDS = 0.5
DRAIN_TIMEOUT_SECONDS = 10.0
# Consumer metadata refresh interval. aiokafka's default (300 s) would leave a
# topic created after the sink started unread for up to five minutes.
METADATA_MAX_AGE_MS = 5000
# At most one warning per topic in this many seconds for unparsable records.
PARSE_WARNING_INTERVAL_SECONDS = 10.0

# Errors after which retrying the same ClickHouse operation can succeed.
STORE_ERRORS = (ClickHouseError, OSError, DataFolderLockedError)

_T = TypeVar("_T")


class _TableTarget:
    """Table, columns and row builder for the records of one topic."""

    def __init__(self, table: str, columns: tuple[str, ...], build_row: RowBuilder) -> None:
        check_table_name(table)
        self.table = table
        self.columns = columns
        self.build_row = build_row


class AuditSink:
    """Consumes the raw and rejected topics and stores every record in ClickHouse.

    Use `await start()` and `await stop()`, or `async with AuditSink(config):`.
    """

    def __init__(self, config: HooklineConfig) -> None:
        kafka, audit = config.kafka, config.audit
        if kafka.raw_topic == kafka.rejected_topic:
            raise ConfigError(
                f"kafka.raw_topic and kafka.rejected_topic are both {kafka.raw_topic!r}; "
                "the audit sink needs two topics"
            )
        if audit.batch_max_rows < 1 or audit.batch_max_seconds <= 0:
            raise ConfigError("audit.batch_max_rows and audit.batch_max_seconds must be positive")

        self._config = config
        self._store = AuditStore(normalize_dsn(audit.dsn))
        self._targets = {
            kafka.raw_topic: _TableTarget(audit.events_table, EVENT_COLUMNS, event_row),
            kafka.rejected_topic: _TableTarget(
                audit.rejections_table, REJECTION_COLUMNS, rejection_row
            ),
        }
        self._query_server = QueryServer(self._store, audit.query_host, audit.query_port)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

        self._batch = PendingBatch()
        # Held during each insert and by the rebalance callbacks, so a
        # partition is never revoked while its rows are being inserted.
        self._insert_lock = asyncio.Lock()
        self._unresolved: set[TopicPartition] = set()
        self._recheck: set[TopicPartition] = set()
        self._to_commit: dict[TopicPartition, int] = {}
        self._assignment_generation = 0
        self._store_healthy = True
        self._parse_warned_at: dict[str, float] = {}
        self._kill_switch = InsertKillSwitch()

    @property
    def query_port(self) -> int:
        """Port of the query endpoint, which differs from the config when it requests port 0."""
        return self._query_server.port

    async def __aenter__(self) -> AuditSink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open ClickHouse, join the consumer group and start consuming.

        With a chDB DSN the data folder is opened here, so a folder locked by
        another process fails at once (DataFolderLockedError). A ClickHouse
        server that is down is only logged: the sink retries in the background.
        """
        if self._task is not None:
            raise RuntimeError("the audit sink is already started")

        await self._open_store()
        try:
            await self._query_server.start()
            self._consumer = self._new_consumer()
            await self._consumer.start()
            self._consumer.subscribe(list(self._targets), listener=_RebalanceListener(self))
            await self._warn_missing_topics()
        except BaseException:
            await self._close_resources()
            raise

        self._task = asyncio.create_task(self._run(), name="audit-sink")
        logger.info(
            "audit sink started: topics %s, group %s, ClickHouse %s",
            ", ".join(self._targets),
            self._config.audit.group_id,
            redact_dsn(self._store.dsn),
        )

    async def stop(self, timeout: float = DRAIN_TIMEOUT_SECONDS) -> None:
        """Insert and commit the pending batch within TIMEOUT seconds, then close.

        Rows not stored by then are dropped from memory and logged. They were
        never committed, so a restarted sink reads them again.
        """
        if self._task is None:
            return
        self._stopping.set()
        task, self._task = self._task, None
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except Exception:
            logger.exception("audit sink loop failed before stop")

        dropped = len(self._batch)
        if dropped:
            metrics.ROWS_DROPPED.inc(dropped)
            logger.warning(
                "audit sink stopped with %d rows not stored within %.1f s; "
                "they were not committed and are read again on restart",
                dropped,
                timeout,
            )
            self._batch.drop(self._batch.partitions())
        await self._close_resources()
        logger.info("audit sink stopped")

    async def wait(self) -> None:
        """Wait until the consume loop ends; re-raise the error that ended it, if any."""
        if self._task is not None:
            await asyncio.shield(self._task)

    # --- consume loop -------------------------------------------------------------------

    async def _run(self) -> None:
        audit = self._config.audit
        await self._retry(
            "create tables",
            lambda: self._store.create_tables(audit.events_table, audit.rejections_table),
        )
        while not self._stopping.is_set():
            await self._resolve_positions()
            await self._fetch()
            if self._batch_due():
                await self._flush()
        await self._flush()

    async def _fetch(self) -> None:
        audit = self._config.audit
        timeout = min(audit.batch_max_seconds, IDLE_POLL_SECONDS)
        if self._batch:
            timeout = max(min(timeout, audit.batch_max_seconds - self._batch.age()), 0.0)
        room = max(audit.batch_max_rows - len(self._batch), 1)
        records = await self._kafka().getmany(timeout_ms=int(timeout * 1000), max_records=room)
        self._add(records)

    def _add(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for partition, batch in records.items():
            if partition in self._unresolved:
                # Fetched before the seek, which moves the position; read again after it.
                continue
            target = self._targets[partition.topic]
            rows = [target.build_row(record) for record in batch]
            for row in rows:
                if row.parse_error:
                    self._note_parse_error(partition, row.offset, row.parse_error)
            self._batch.add(partition, rows)
        metrics.PENDING_ROWS.set(len(self._batch))

    def _batch_due(self) -> bool:
        audit = self._config.audit
        if not self._batch:
            return False
        return (
            len(self._batch) >= audit.batch_max_rows
            or self._batch.age() >= audit.batch_max_seconds
            or self._stopping.is_set()
        )

    # --- positions ----------------------------------------------------------------------

    async def _resolve_positions(self) -> None:
        """Seek each newly assigned partition to the offset after its last stored row."""
        while self._unresolved:
            generation = self._assignment_generation
            partitions = set(self._unresolved)
            tables = {topic: target.table for topic, target in self._targets.items()}
            positions = await self._retry(
                "read stored offsets",
                functools.partial(resume_positions, self._kafka(), self._store, tables, partitions),
            )
            if generation != self._assignment_generation:
                continue  # A rebalance ran meanwhile; read again for the new assignment.

            consumer = self._kafka()
            resumed = sorted(partitions & consumer.assignment())
            for partition in resumed:
                consumer.seek(partition, positions[partition])
            if resumed:
                logger.info(
                    "partitions resume at offsets %s",
                    ", ".join(f"{tp.topic}-{tp.partition}:{positions[tp]}" for tp in resumed),
                )
            self._unresolved -= partitions
            self._update_pauses()

    # --- insert and commit --------------------------------------------------------------

    async def _flush(self) -> None:
        if not self._batch:
            return
        await self._retry("insert", self._insert_batch)
        metrics.PENDING_ROWS.set(len(self._batch))
        await self._commit()

    async def _insert_batch(self) -> None:
        for partition in self._batch.partitions():
            while True:
                async with self._insert_lock:
                    finished = await self._insert_chunk(partition)
                if finished:
                    break

    async def _insert_chunk(self, partition: TopicPartition) -> bool:
        """Insert the next one-month run of PARTITION's rows; return True when none are left.

        Runs under the insert lock.
        """
        consumer = self._kafka()
        if partition not in consumer.assignment():
            dropped = self._batch.drop([partition])
            metrics.ROWS_DROPPED.inc(dropped)
            return True

        target = self._targets[partition.topic]
        if partition in self._recheck:
            await self._skip_stored_rows(partition, target.table)
        chunk = self._batch.next_chunk(partition)
        if not chunk:
            return True

        first, last = chunk[0].offset, chunk[-1].offset
        token = f"{partition.topic}:{partition.partition}:{first}:{last}"
        started = time.perf_counter()
        await self._store.insert(target.table, target.columns, [row.values for row in chunk], token)
        metrics.INSERT_SECONDS.labels(target.table).observe(time.perf_counter() - started)
        metrics.ROWS_INSERTED.labels(target.table).inc(len(chunk))

        self._batch.remove_through(partition, last)
        self._to_commit[partition] = last + 1
        self._update_lag(partition, last + 1)
        self._kill_switch.insert_done()
        return not self._batch.next_chunk(partition)

    async def _skip_stored_rows(self, partition: TopicPartition, table: str) -> None:
        """Drop rows that a failed insert stored after all."""
        stored = await self._store.max_offsets(table, partition.topic, [partition.partition])
        self._recheck.discard(partition)
        if partition.partition not in stored:
            return
        last_stored = stored[partition.partition]
        skipped = self._batch.remove_through(partition, last_stored)
        if skipped:
            self._to_commit[partition] = last_stored + 1
            logger.info(
                "%d rows of %s-%d were stored by a failed insert; not inserting them again",
                skipped,
                partition.topic,
                partition.partition,
            )

    async def _commit(self) -> None:
        consumer = self._kafka()
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in self._to_commit.items() if tp in assigned}
        self._to_commit.clear()
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as error:
            # The rows are in ClickHouse, which sets the resume point, so a
            # failed commit only leaves the committed offsets behind until the
            # next commit, which includes these partitions again.
            for partition, offset in offsets.items():
                self._to_commit[partition] = max(self._to_commit.get(partition, 0), offset)
            logger.warning("Kafka commit of %d partitions failed: %s", len(offsets), error)

    # --- retries, pauses and rebalances -------------------------------------------------

    async def _retry(self, operation: str, step: Callable[[], Awaitable[_T]]) -> _T:
        """Run STEP until it succeeds, pausing the consumer between attempts."""
        delay = BACKOFF_INITIAL_SECONDS
        attempt = 0
        while True:
            try:
                result = await step()
            except STORE_ERRORS as error:
                attempt += 1
                metrics.STORE_RETRIES.labels(operation).inc()
                self._recheck.update(self._batch.partitions())
                if self._store_healthy:
                    self._store_healthy = False
                    self._update_pauses()
                logger.warning(
                    "ClickHouse %s failed (attempt %d, %d rows waiting); retrying in %.1f s: %s",
                    operation,
                    attempt,
                    len(self._batch),
                    delay,
                    error,
                )
                await self._idle(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            except KafkaError as error:
                attempt += 1
                logger.warning("Kafka call during %s failed; retrying: %s", operation, error)
                await self._idle(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue

            if not self._store_healthy:
                self._store_healthy = True
                self._update_pauses()
                logger.info("ClickHouse %s succeeded after %d retries", operation, attempt)
            return result

    async def _idle(self, seconds: float) -> None:
        """Wait SECONDS while polling the paused consumer, so it stays in its group."""
        records = await self._kafka().getmany(timeout_ms=int(seconds * 1000))
        self._add(records)

    def _update_pauses(self) -> None:
        consumer = self._kafka()
        assigned = consumer.assignment()
        if not self._store_healthy:
            consumer.pause(*assigned)
            return
        consumer.pause(*(assigned & self._unresolved))
        consumer.resume(*(assigned - self._unresolved))

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._commit()
        async with self._insert_lock:
            dropped = self._batch.drop(revoked)
            self._unresolved -= revoked
            self._recheck -= revoked
            # A failed commit above left these offsets for a later commit, which
            # could move the next owner's committed offsets back.
            for partition in revoked:
                self._to_commit.pop(partition, None)
        metrics.PENDING_ROWS.set(len(self._batch))
        if dropped:
            metrics.ROWS_DROPPED.inc(dropped)
            logger.info(
                "dropped %d unstored rows of revoked partitions; the next owner reads them", dropped
            )

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._assignment_generation += 1
        self._unresolved |= assigned
        self._kafka().pause(*assigned)

    # --- helpers ------------------------------------------------------------------------

    async def _open_store(self) -> None:
        try:
            await self._store.open()
        except (ClickHouseError, OSError) as error:
            if self._store.embedded:
                await self._store.close()
                raise
            logger.warning("ClickHouse is not available yet; the sink retries: %s", error)
        except DataFolderLockedError:
            await self._store.close()
            raise

    def _new_consumer(self) -> AIOKafkaConsumer:
        kafka, audit = self._config.kafka, self._config.audit
        return AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            client_id=f"{kafka.client_id}-audit",
            group_id=audit.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=audit.batch_max_rows,
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )

    async def _warn_missing_topics(self) -> None:
        missing = sorted(set(self._targets) - await self._kafka().topics())
        if missing:
            logger.warning(
                "topics %s do not exist yet; the sink reads them about %.0f s after "
                "they are created",
                ", ".join(missing),
                METADATA_MAX_AGE_MS / 1000,
            )

    def _kafka(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the audit sink is not started")
        return self._consumer

    async def _close_resources(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        await self._query_server.stop()
        await self._store.close()

    def _update_lag(self, partition: TopicPartition, next_offset: int) -> None:
        end = self._kafka().last_stable_offset(partition)
        if end is None:
            return
        lag = max(end - next_offset, 0)
        metrics.CONSUMER_LAG.labels(partition.topic, str(partition.partition)).set(lag)

    def _note_parse_error(self, partition: TopicPartition, offset: int, error: str) -> None:
        metrics.PARSE_ERRORS.labels(partition.topic).inc()
        now = time.monotonic()
        last = self._parse_warned_at.get(partition.topic)
        if last is not None and now - last < PARSE_WARNING_INTERVAL_SECONDS:
            return
        self._parse_warned_at[partition.topic] = now
        logger.warning(
            "record %s-%d@%d could not be parsed and is stored with parse_error (%s); "
            "further ones on this topic are counted in %s for %.0f s",
            partition.topic,
            partition.partition,
            offset,
            error,
            "hookline_audit_parse_errors",
            PARSE_WARNING_INTERVAL_SECONDS,
        )


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalance listener that passes aiokafka's callbacks to the sink."""

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._sink._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._sink._on_assigned(set(assigned))
