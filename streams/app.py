"""The Faust application of the router: consume `webhooks.raw`, deduplicate, route.

One agent reads the raw topic with raw-bytes key and value, runs
`streams.router.Router` on each record and produces what it returns. The
deduplication table is a Faust table named `dedupe`, so its changelog topic
is `<router.app_id>-dedupe-changelog`. `streams.dedupe` describes its format
and expiry.

The processing guarantee is Faust's `exactly_once`: each raw partition has a
transactional producer, and the offsets Faust commits for a partition go in
the same Kafka transaction as the records produced for it. Consumers of the
routed topics must read with `isolation.level=read_committed`. They see
records when the transaction commits, about `router.commit_interval_seconds`
after the router produced them.

faust-streaming 0.15.3 needs four corrections for that guarantee to hold,
all made here:

- `Topic.send` picks the transactional producer from the partition group of
  the destination topic. A routed topic that the app does not consume has
  no group, so Faust sends the record without a transaction. Read_committed
  consumers then see it before the commit, and after a crash before the
  commit the next worker routes the event again. `produce` sends through
  the producer of the raw partition instead.
- Faust reads the offsets to commit before it takes the per-partition
  transaction locks, and commits one partition after the other. Records
  that the agent produces in between go into the transaction without their
  offsets, so after a crash the next worker routes those events again.
  Without the correction, 3, 0 and 5 of 20,000 events were routed twice in
  three runs that killed the worker with SIGKILL, and none in six runs with
  it. `RouterApp` makes a commit and the processing of one event exclude
  each other.
- Table recovery after a rebalance takes the end offset of each changelog
  partition from the consumer's last fetch response, which a partition
  assigned a moment ago does not have yet. Recovery then saw -1 for
  partitions with hundreds of records, and a worker that got back a
  partition it had restored before crashed with ConsistencyError.
  `_read_highwaters_from_broker` requests them from the broker instead.
- After a rebalance or a restart, Faust sometimes handed the agent a raw
  record several offsets past the one it had just sought to, took the
  offsets in between as a gap and committed past them, so those events
  were never routed. `streams.offset_guard` drops such a record, unless the
  router already processed the offsets in between, and seeks the partition back.

Faust also commits the transactions of a worker's partitions one after the
other, while the commit barrier blocks the processing of every event.
`_commit_transactions_concurrently` commits them at the same time instead,
which shortens that pause.

Table writes bypass Faust's `Table.__setitem__`. It hands the changelog
record to a background buffer, which may publish it after the commit of the
event. The router produces the changelog record with the routed records
instead (see `Router.process`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import faust
from mode import CrashingSupervisor

from hookline.config import HooklineConfig
from streams import topics
from streams.dedupe import Deduplicator
from streams.envelope import OutboundRecord
from streams.offset_guard import OffsetGuard, guard_offsets, unprocessed_offsets
from streams.router import Router
from streams.rules import load_rules

logger = logging.getLogger(__name__)

# Faust store URL of the deduplication table, read when create_app gets none.
STORE_ENV_VAR = "HOOKLINE_ROUTER_STORE"
# NOTE: the in-memory store keeps every key of the window in RAM. Production
# should use "rocksdb://", which faust-streaming 0.15.3 opens with the
# rocksdict package (tested with rocksdict 0.3.29) under router.data_dir.
# Either store still replays the whole changelog at start, because the
# router does not record the RocksDB store's changelog offset.
DEFAULT_STORE = "memory://"

DEDUPE_TABLE = "dedupe"
AGENT_NAME = "route"
COUNTS_LOG_INTERVAL_SECONDS = 60.0
# Routed records become visible only when their transaction commits, every
# 100 ms by default, so waiting this long to fill batches adds little to the
# visible delay. On a 2-vCPU machine that also ran the broker, it raised the
# throughput from 2,000-2,600 to 4,100-4,700 events/s compared with 2 ms,
# measured with one commit per second.
PRODUCER_LINGER_MS = 20
# Seconds without heartbeat after which the broker evicts a worker from the
# consumer group. After a crash, the partitions of the dead worker resume
# only after this time (Faust's default is 60).
SESSION_TIMEOUT_SECONDS = 15.0
# Max time the broker keeps a fetch of the router's consumer open while no new
# record arrives (faust-streaming 0.15.3 sets 1.5 s). The broker processes one
# request per connection at a time (Kafka protocol guide, "Network"), so an
# offset request sent behind an idle fetch waited up to that long. With 1.5 s
# each of the two offset steps of table recovery took 1.5 s on a new group.
FETCH_MAX_WAIT_MS = 100
# Room for the headers of a routed or dead-lettered record above the largest
# body a source accepts, in bytes. Ingest sizes its producer the same way.
RECORD_HEADROOM_BYTES = 256 * 1024
MIN_REQUEST_BYTES = 1024 * 1024


class RouterApp(faust.App):
    """Faust app with the router's start-up step and a commit barrier.

    Before its services start, the app creates the raw topic if it is missing
    and gives the table's changelog as many partitions as the raw topic,
    which Faust requires of a table and the stream that writes it.

    `commit_barrier` is held by every consumer commit and by the agent while
    it processes one event, from reading it until it is acknowledged.
    """

    hookline_config: HooklineConfig
    dedupe_table: Any = None
    # Not `router`, which is Faust's request router for table-key routes.
    hookline_router: Router | None = None
    offset_guard: OffsetGuard | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commit_barrier = asyncio.Lock()
        self.commits_stopped = False

    def stop_commits(self, reason: str) -> None:
        """Commit nothing more, because an open transaction contains part of an event.

        The worker is expected to stop. The broker aborts the open transactions
        when the next worker's producers take over their transactional ids, or
        after the transaction timeout, and the next worker routes the event again.
        """
        if not self.commits_stopped:
            logger.error("Router %s stops committing: %s", self.conf.id, reason)
        self.commits_stopped = True

    async def on_first_start(self) -> None:
        """Create the raw topic if it is missing and size the changelog like it."""
        await super().on_first_start()
        config = self.hookline_config
        admin = topics.new_admin_client(config)
        await admin.start()
        try:
            await topics.create_missing_topics(admin, [config.kafka.raw_topic])
            partitions = await topics.partition_count(admin, config.kafka.raw_topic)
        finally:
            await admin.close()

        if partitions is None:
            raise RuntimeError(f"topic {config.kafka.raw_topic} is missing after creating it")
        if self.dedupe_table is not None:
            self.dedupe_table.partitions = partitions
            self.dedupe_table.changelog_topic.partitions = partitions
        logger.info(
            "Router %s reads %s, which has %d partitions",
            self.conf.id,
            config.kafka.raw_topic,
            partitions,
        )

    def _new_consumer(self) -> Any:
        consumer = super()._new_consumer()
        commit = consumer.commit
        barrier = self.commit_barrier

        async def commit_between_events(*args: Any, **kwargs: Any) -> bool:
            async with barrier:
                if self.commits_stopped:
                    return False
                result: bool = await commit(*args, **kwargs)
                return result

        consumer.commit = commit_between_events  # type: ignore[method-assign]
        _shorten_fetch_wait(consumer, FETCH_MAX_WAIT_MS)
        _read_highwaters_from_broker(consumer)
        self.offset_guard = guard_offsets(consumer, self.hookline_config.kafka.raw_topic)
        _log_offset_gaps(consumer)
        return consumer

    def _new_producer(self) -> Any:
        producer = super()._new_producer()
        _commit_transactions_concurrently(producer)
        return producer


def _log_offset_gaps(consumer: Any) -> None:
    """Log each offset range that Faust takes as a gap in a partition it reads.

    Faust 0.15.3 assumes that offsets skipped between two records it reads
    do not exist, as in a compacted topic, and commits past them as if
    processed. That is harmless for offsets the router has acknowledged
    already, which happens when Faust's seek to the committed offset after a
    rebalance comes after records it had processed. For any other offset of
    the raw topic the warning names records that may be committed without
    being routed. `streams.offset_guard` lets such a skip through only when
    the broker has no records there, and the fault tests fail on the warning.
    """
    add_gap = consumer._add_gap

    async def add_gap_logged(tp: Any, offset_from: int, offset_to: int) -> None:
        # Faust's range includes OFFSET_TO, the record it is about to process.
        acked = consumer._acked_index.get(tp, ())
        committed = consumer._committed_offset.get(tp)
        unprocessed = unprocessed_offsets(offset_from, offset_to, acked, committed)
        if unprocessed:
            logger.warning(
                "Faust skipped offsets %d to %d of %s[%d] and takes them as a gap, so it "
                "may commit past %d of them that the router did not process",
                offset_from,
                offset_to - 1,
                tp.topic,
                tp.partition,
                len(unprocessed),
            )
        else:
            logger.info(
                "Faust takes offsets %d to %d of %s[%d] as a gap, which the router "
                "has processed already",
                offset_from,
                offset_to - 1,
                tp.topic,
                tp.partition,
            )
        await add_gap(tp, offset_from, offset_to)

    consumer._add_gap = add_gap_logged


def _commit_transactions_concurrently(producer: Any) -> None:
    """Make the producer commit the transactions of all partitions at the same time.

    faust-streaming 0.15.3 commits them in sequence, and each commit waits for
    several broker round trips (offsets to the transaction, offsets to the
    group, end of transaction). The per-partition steps are those of Faust's
    `Producer.commit_transactions`, under the same per-transaction lock.
    """

    async def commit_one(
        transactional_id: str, offsets: Any, group_id: str, start_new_transaction: bool
    ) -> None:
        async with producer._trn_locks[transactional_id]:
            transaction_producer = producer._transaction_producers.get(transactional_id)
            if transaction_producer is None:
                logger.warning("Commit for unknown transaction %s skipped", transactional_id)
                return
            await transaction_producer.send_offsets_to_transaction(offsets, group_id)
            await transaction_producer.commit_transaction()
            if start_new_transaction:
                await transaction_producer.begin_transaction()

    async def commit_transactions(
        tid_to_offset_map: Any, group_id: str, start_new_transaction: bool = True
    ) -> None:
        await asyncio.gather(
            *(
                commit_one(transactional_id, offsets, group_id, start_new_transaction)
                for transactional_id, offsets in tid_to_offset_map.items()
            )
        )

    producer.commit_transactions = commit_transactions


def _shorten_fetch_wait(consumer: Any, wait_ms: int) -> None:
    """Limit the idle fetch wait of the Kafka consumer that Faust creates to WAIT_MS."""
    thread = consumer._thread
    create = thread._create_worker_consumer

    def create_with_short_wait(transport: Any) -> Any:
        kafka_consumer = create(transport)
        # AIOKafkaConsumer hands this to its fetcher when it starts.
        kafka_consumer._fetch_max_wait_ms = wait_ms
        return kafka_consumer

    thread._create_worker_consumer = create_with_short_wait


def _read_highwaters_from_broker(consumer: Any) -> None:
    """Make table recovery ask the broker for the end offsets of changelog partitions.

    In a transaction, faust-streaming 0.15.3 takes them from the consumer's
    last fetch response, and a partition not fetched since the latest
    rebalance has none, so recovery reads the end offset as -1. A worker then
    skips restoring such a partition, which it may not have in memory, and
    crashes with ConsistencyError when it restored the partition before.
    With read_committed the broker returns the last stable offset, the
    value the fetch response would have carried.

    NOTE: the last offset below it is a transaction marker, which no consumer
    receives as a record. So recovery of a changelog partition with records
    ends only in Faust's check for aborted transactions, after two 5 s waits
    without a record: about 10 s on every restart (measured with `make up`).
    """
    thread = consumer._thread

    async def end_offsets(partitions: list[Any]) -> dict[Any, int]:
        offsets: dict[Any, int] = await thread._ensure_consumer().end_offsets(list(partitions))
        return offsets

    thread._highwaters = end_offsets


def max_request_size(config: HooklineConfig) -> int:
    """Return the producer's request size limit: room for the largest body any source accepts.

    Faust's default of 1,000,000 bytes is below GitHub's 25 MiB limit. A
    record the producer rejects stops the worker, and the next worker stops
    on the same record, so the partition would not move past it.
    """
    largest_body = max((source.max_body_bytes for source in config.sources.values()), default=0)
    return max(MIN_REQUEST_BYTES, largest_body + RECORD_HEADROOM_BYTES)


def _app_settings(config: HooklineConfig, store: str) -> dict[str, Any]:
    router = config.router
    brokers = [f"kafka://{server.strip()}" for server in config.kafka.bootstrap_servers.split(",")]
    settings: dict[str, Any] = {
        "broker": brokers,
        "broker_client_id": f"{config.kafka.client_id}-router",
        "broker_commit_interval": router.commit_interval_seconds,
        "broker_session_timeout": SESSION_TIMEOUT_SECONDS,
        "store": store,
        "processing_guarantee": "exactly_once",
        "datadir": str(router.data_dir),
        "key_serializer": "raw",
        "value_serializer": "raw",
        "producer_linger_ms": PRODUCER_LINGER_MS,
        # NOTE: a raw record larger than this, which only a producer other
        # than ingest can write, still stops the router at its offset.
        "producer_max_request_size": max_request_size(config),
        "consumer_auto_offset_reset": "earliest",
        # An exception in the agent stops the worker, so after a restart the
        # partition resumes from its last committed offset. With Faust's
        # default supervisor, the agent restarts and leaves the failed event
        # unacknowledged, so Faust never commits that partition past it.
        "agent_supervisor": CrashingSupervisor,
        "topic_disable_leader": True,
        "web_enabled": router.web_port > 0,
        "web_bind": "127.0.0.1",
        "web_host": "127.0.0.1",
    }
    if router.web_port > 0:
        settings["web_port"] = router.web_port
    return settings


def transactional_id(app: faust.App, raw_topic: str, partition: int) -> str | None:
    """Return the id of the transactional producer of raw PARTITION.

    Returns None outside a Faust worker (`app.in_transaction` false), where
    records are sent without a transaction.
    """
    if not app.in_transaction:
        return None
    group = app.assignor.group_for_topic(raw_topic)
    return f"{app.conf.id}-{group}-{partition}"


async def produce(producer: Any, record: OutboundRecord, transaction_id: str | None) -> None:
    """Produce RECORD with the Faust PRODUCER in the transaction TRANSACTION_ID.

    Without a transaction id the record is sent without a transaction and this
    waits until the broker acknowledges it.
    """
    if transaction_id is None:
        pending = await producer.send(
            record.topic, record.key, record.value, record.partition, None, record.headers
        )
        await pending
        return

    await producer.send(
        record.topic,
        record.key,
        record.value,
        record.partition,
        None,
        record.headers,
        transactional_id=transaction_id,
    )


def _process_safely(router: Router, message: Any) -> list[OutboundRecord]:
    headers = message.headers or ()
    try:
        return router.process(message.key, message.value, headers, message.partition)
    except Exception as error:
        # A record that breaks the router must not stop its partition.
        logger.exception(
            "Routing failed for %s[%d]@%d", message.topic, message.partition, message.offset
        )
        reason = f"router error: {type(error).__name__}: {error}"
        record = router.dead_letter(message.key, message.value, headers, reason)
        return [*router.table_changes(), record]


async def route_message(app: Any, router: Router, message: Any, raw_topic: str) -> None:
    """Produce the records that ROUTER returns for one raw MESSAGE, in its partition's transaction.

    APP is the `RouterApp`. The caller must have taken the commit barrier. When producing
    fails after some of the records were sent, the app stops committing,
    because the open transaction contains only part of the event. The error
    is raised either way.
    """
    producer = app.producer
    transaction_id = transactional_id(app, raw_topic, message.partition)
    produced = 0
    try:
        for record in _process_safely(router, message):
            await produce(producer, record, transaction_id)
            produced += 1
    except BaseException as error:
        if produced:
            app.stop_commits(
                f"producing for {message.topic}[{message.partition}]"
                f"@{message.offset} failed after {produced} record(s): {error!r}"
            )
        raise


def create_app(config: HooklineConfig, *, store: str | None = None) -> faust.App:
    """Build the router's Faust app for CONFIG.

    STORE is the Faust store URL of the deduplication table, by default
    $HOOKLINE_ROUTER_STORE, then router.table_store in the config.

    Raises:
        streams.rules.RulesError: the routing rules file is invalid.
    """
    router_config = config.router
    rules = load_rules(
        router_config.rules_file,
        default_topic_template=router_config.default_topic_template,
        unrouted_topic=router_config.unrouted_topic,
    )
    store = store or os.environ.get(STORE_ENV_VAR) or config.router.table_store or DEFAULT_STORE
    raw_topic_name = config.kafka.raw_topic

    app = RouterApp(router_config.app_id, **_app_settings(config, store))
    app.hookline_config = config
    raw_topic = app.topic(
        raw_topic_name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )
    # Faust serializes keys and values of type bytes with its "raw" codec.
    table = app.Table(DEDUPE_TABLE, default=None, key_type=bytes, value_type=bytes)
    app.dedupe_table = table
    deduplicator = Deduplicator(table.data, router_config.dedupe_window_seconds)
    router = Router(
        rules,
        deduplicator,
        router_config.dead_letter_topic,
        changelog_topic=table.changelog_topic.get_topic_name(),
    )
    app.hookline_router = router

    @app.agent(raw_topic, name=AGENT_NAME)
    async def route(stream: faust.StreamT) -> None:
        async for event in stream.events():
            async with app.commit_barrier:
                await route_message(app, router, event.message, raw_topic_name)
                # Acknowledge before releasing the barrier, so a commit
                # includes the event's offset if and only if it includes
                # the event's records.
                event.ack()

    @app.on_partitions_revoked.connect
    async def forget_expiry_order(sender: faust.App, revoked: Any, **kwargs: Any) -> None:
        deduplicator.forget_order()

    @app.timer(COUNTS_LOG_INTERVAL_SECONDS, name="log_counts")
    async def log_counts() -> None:
        counts = router.counts
        logger.info(
            "Router totals: %d routed, %d repeats dropped, %d unrouted, %d dead-lettered",
            counts.routed,
            counts.repeats,
            counts.unrouted,
            counts.dead_lettered,
        )

    return app
