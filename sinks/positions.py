"""Resume offsets of Kafka partitions, with ClickHouse as the offset store.

A partition resumes after the highest offset stored in its table. It never
resumes before its committed offset, so rows deleted from the table after
their commit are not stored again. With neither, it starts at the beginning
of the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from sinks.store import AuditStore


async def resume_positions(
    consumer: AIOKafkaConsumer,
    store: AuditStore,
    tables: Mapping[str, str],
    partitions: Iterable[TopicPartition],
) -> dict[TopicPartition, int]:
    """Return the offset where each of PARTITIONS resumes.

    TABLES maps each topic to the table that stores its records.

    Raises:
        ClickHouseError: the stored offsets could not be read.
        KafkaError: the committed or beginning offsets could not be read.
    """
    wanted = set(partitions)
    positions: dict[TopicPartition, int] = {}
    for topic in {partition.topic for partition in wanted}:
        numbers = sorted(partition.partition for partition in wanted if partition.topic == topic)
        stored = await store.max_offsets(tables[topic], topic, numbers)
        for number in numbers:
            partition = TopicPartition(topic, number)
            positions[partition] = await _position(consumer, partition, stored.get(number))
    return positions


async def _position(
    consumer: AIOKafkaConsumer, partition: TopicPartition, last_stored: int | None
) -> int:
    committed = await consumer.committed(partition)
    candidates = [committed] if committed is not None else []
    if last_stored is not None:
        candidates.append(last_stored + 1)
    if candidates:
        return max(candidates)

    beginning = await consumer.beginning_offsets([partition])
    return int(beginning[partition])
