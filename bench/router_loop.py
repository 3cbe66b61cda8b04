"""Baseline for the router benchmark: a plain aiokafka consume-and-produce loop.

It reads a topic from the start in a consumer group of its own and produces each record's
key, value and headers unchanged to another topic, with an idempotent producer (acks=all)
and the router's linger, awaiting each fetched batch's acknowledgements before it commits
the batch's offsets (at least once). It has no deduplication, no routing rules, no
CloudEvents headers and no transactions, which the router has.

    python -m bench.router_loop --bootstrap HOST:PORT --source-topic A --target-topic B --count N

It prints one JSON line with the records relayed and the seconds from first to last batch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.kafka_tools import BULK_LINGER_MS

IDLE_LIMIT_SECONDS = 60.0


async def relay(bootstrap_servers: str, source_topic: str, target_topic: str, count: int) -> dict:
    """Relay COUNT records from SOURCE_TOPIC to TARGET_TOPIC; return counts and timings.

    Stops early when no record arrives for IDLE_LIMIT_SECONDS.
    """
    consumer = AIOKafkaConsumer(
        source_topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"bench-router-loop-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=BULK_LINGER_MS,
    )
    await consumer.start()
    await producer.start()
    relayed = 0
    first: float | None = None
    last_record = time.monotonic()
    try:
        while relayed < count and time.monotonic() - last_record < IDLE_LIMIT_SECONDS:
            batches = await consumer.getmany(timeout_ms=500)
            deliveries = []
            for records in batches.values():
                for record in records:
                    headers = list(record.headers or ())
                    delivery = await producer.send(
                        target_topic, record.value, key=record.key, headers=headers
                    )
                    deliveries.append(delivery)
            if not deliveries:
                continue
            if first is None:
                first = time.monotonic()
            await asyncio.gather(*deliveries)
            await consumer.commit()
            relayed += len(deliveries)
            last_record = time.monotonic()
    finally:
        await producer.stop()
        await consumer.stop()
    seconds = last_record - first if first is not None else None
    return {"relayed": relayed, "seconds": seconds}


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, relay the records and print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.router_loop", description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--source-topic", required=True, help="topic to read from the start")
    parser.add_argument("--target-topic", required=True, help="topic to produce to")
    parser.add_argument("--count", type=int, required=True, help="records to relay, then exit")
    args = parser.parse_args(argv)
    result = asyncio.run(relay(args.bootstrap, args.source_topic, args.target_topic, args.count))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
