"""Time the router's own work per event, without Kafka, Faust's stream or a producer.

`python -m bench.router_cost` feeds new Stripe deliveries, recorded as ingest writes them to
`webhooks.raw` (`bench.kafka_tools.stripe_delivery`, the records of the router stage), to a
router with the routing rules of `config/routes.toml` and a dict as the deduplication table.
It times two scopes:

- `process`: `Router.process`, the per-record decision alone;
- `agent`: `streams.app.route_message`, the agent's work for one event. That is the header
  copy, `Router.process` and one `produce` call per outbound record, sent to a producer
  that discards it.

Every event is new, so each gives a changelog record and one routed record. Each pass builds
new records and new routers, because an event already in the table would be a repeat. The
router stage's CPU µs per record minus the `agent` figure is what Faust's consumer, stream
and transactions and aiokafka's producer cost.

    taskset -c 0 .venv/bin/python -m bench.router_cost --records 20000 --passes 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from bench.kafka_tools import stripe_delivery
from hookline.config import HooklineConfig, load_config
from streams.app import route_message
from streams.dedupe import Deduplicator
from streams.router import Router
from streams.rules import load_rules

SOURCE = "stripe"
PARTITIONS = 4
WARM_UP_RECORDS = 200
CHANGELOG_TOPIC = "hookline-router-dedupe-changelog"
SCOPES = ("process", "agent")


@dataclass(frozen=True, slots=True)
class RawMessage:
    """The fields of a Faust `ConsumerMessage` that the router's agent reads."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class DiscardingProducer:
    """A Faust producer whose `send` counts the record and keeps nothing."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> None:
        """Count the record and return, as if it were added to the open transaction."""
        self.sent += 1


def discarding_app(app_id: str) -> Any:
    """Return a stand-in for `RouterApp` inside a worker, with a `DiscardingProducer`."""

    def stop_commits(reason: str) -> None:
        raise RuntimeError(f"the agent stopped commits: {reason}")

    return SimpleNamespace(
        in_transaction=True,
        producer=DiscardingProducer(),
        conf=SimpleNamespace(id=app_id),
        assignor=SimpleNamespace(group_for_topic=lambda topic: 0),
        stop_commits=stop_commits,
    )


def make_messages(config: HooklineConfig, count: int) -> list[RawMessage]:
    """Return COUNT new Stripe deliveries as raw messages, spread in turn over the partitions."""
    source = config.sources[SOURCE]
    now = int(time.time())
    messages = []
    for index in range(count):
        delivery = stripe_delivery(source, source.secrets[0], now)
        messages.append(
            RawMessage(
                topic=config.kafka.raw_topic,
                partition=index % PARTITIONS,
                offset=index // PARTITIONS,
                key=delivery.key,
                value=delivery.body,
                # aiokafka hands Faust the headers of a fetched record as a tuple.
                headers=tuple(delivery.kafka_headers()),
            )
        )
    return messages


def new_router(config: HooklineConfig) -> Router:
    """Return a router for CONFIG's rules with an empty dict as the deduplication table."""
    router_config = config.router
    rules = load_rules(
        router_config.rules_file,
        default_topic_template=router_config.default_topic_template,
        unrouted_topic=router_config.unrouted_topic,
    )
    deduplicator = Deduplicator({}, router_config.dedupe_window_seconds)
    return Router(rules, deduplicator, router_config.dead_letter_topic, CHANGELOG_TOPIC)


def run_process(router: Router, messages: Sequence[RawMessage]) -> int:
    """Run `Router.process` on MESSAGES and return the number of outbound records."""
    outbound = 0
    for message in messages:
        outbound += len(
            router.process(message.key, message.value, message.headers, message.partition)
        )
    return outbound


async def run_agent(app: Any, router: Router, messages: Sequence[RawMessage]) -> int:
    """Run the agent's per-event work on MESSAGES and return the number of records sent."""
    sent_before = app.producer.sent
    for message in messages:
        await route_message(app, router, message, message.topic)
    sent: int = app.producer.sent - sent_before
    return sent


async def time_scope(scope: str, config: HooklineConfig, messages: list[RawMessage]) -> float:
    """Return the CPU µs per event of SCOPE over MESSAGES after the warm-up records.

    Raises:
        RuntimeError: an event did not give exactly a changelog record and one routed record.
    """
    router = new_router(config)
    app = discarding_app(config.router.app_id)
    warm_up, timed = messages[:WARM_UP_RECORDS], messages[WARM_UP_RECORDS:]
    if scope == "process":
        run_process(router, warm_up)
        started = time.process_time()
        outbound = run_process(router, timed)
    else:
        await run_agent(app, router, warm_up)
        started = time.process_time()
        outbound = await run_agent(app, router, timed)
    elapsed = time.process_time() - started

    if outbound != 2 * len(timed) or router.counts.routed != len(messages):
        raise RuntimeError(
            f"{scope}: expected 2 records for each of {len(timed)} events, got {outbound} "
            f"({router.counts}); check the stripe source and config/routes.toml"
        )
    return elapsed / len(timed) * 1e6


async def measure(records: int, passes: int) -> dict[str, list[float]]:
    """Return the CPU µs per event of each scope in each of PASSES passes of RECORDS events."""
    config = load_config()
    results: dict[str, list[float]] = {scope: [] for scope in SCOPES}
    for _ in range(passes):
        messages = make_messages(config, records + WARM_UP_RECORDS)
        for scope in SCOPES:
            results[scope].append(await time_scope(scope, config, messages))
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Print the CPU µs per event of each pass and the median of each scope."""
    parser = argparse.ArgumentParser(prog="python -m bench.router_cost", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000, help="timed events per pass")
    parser.add_argument("--passes", type=int, default=5, help="passes, each with new events")
    arguments = parser.parse_args(argv)
    results = asyncio.run(measure(arguments.records, arguments.passes))
    for scope, values in results.items():
        passes = ", ".join(f"{value:.2f}" for value in values)
        print(f"{scope}: {passes} µs per event; median {statistics.median(values):.2f}")


if __name__ == "__main__":
    main()
