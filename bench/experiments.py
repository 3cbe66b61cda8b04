"""Ingest variants that test a change before anyone makes it in `ingest/`, and their stage.

`batch-size`: aiokafka's producer keeps at most `max_batch_size` bytes (16384 by default,
aiokafka 0.14) per partition in the batch it is filling. A Hookline record of the Stripe
sample is about 1.7 KB (1,067 body bytes, 506 bytes of headers, a 34-byte key), so a batch
is full after about 9 records. Every further `send()` for that partition then waits in
`MessageBatch.wait_drain` until the in-flight produce request returns. The variant sets
`max_batch_size` to `LARGE_BATCH_BYTES` and changes nothing else. The stage serves both on
the pinned stack and compares them round by round, like the ingest stage.

    python -m bench.run --stages batch-size
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from litestar import Litestar

from bench.context import LOAD_CPU, SERVER_CPU, BenchContext, wait_for_http
from bench.ingest_bench import Target, run_rounds, stripe_secret, summarize
from bench.processes import Service
from hookline.broker import find_free_ports
from hookline.config import load_config
from ingest.app import RECORD_HEADROOM_BYTES, create_app
from ingest.producer import KafkaRecordProducer

logger = logging.getLogger(__name__)

LARGE_BATCH_BYTES = 256 * 1024


class LargeBatchProducer(KafkaRecordProducer):
    """Hookline's ingest producer with `max_batch_size` raised to LARGE_BATCH_BYTES."""

    def _create_producer(self) -> AIOKafkaProducer:
        # NOTE: repeats the arguments of KafkaRecordProducer._create_producer, so a change
        # there must be made here too for the comparison to stay fair.
        return AIOKafkaProducer(
            bootstrap_servers=self.kafka.bootstrap_servers,
            client_id=self.kafka.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self.kafka.linger_ms,
            max_request_size=self.max_request_size,
            max_batch_size=LARGE_BATCH_BYTES,
        )


def create_large_batch_app() -> Litestar:
    """Build the ingest application for $HOOKLINE_CONFIG with `LargeBatchProducer`."""
    config = load_config()
    largest_body = max((source.max_body_bytes for source in config.sources.values()), default=0)
    producer = LargeBatchProducer(
        config.kafka,
        max_request_size=max(1024 * 1024, largest_body + RECORD_HEADROOM_BYTES),
    )
    return create_app(config, producer=producer)


def run_batch_size_experiment(
    context: BenchContext, *, rounds: int, seconds: int, connections: int
) -> dict[str, Any]:
    """Compare shipped ingest with the large-batch variant, both pinned to SERVER_CPU."""
    config = context.config("batch")
    shipped_port, variant_port = config.ingest.port, find_free_ports(1)[0]
    commands = {
        "hookline": context.hookline_command(config, "ingest", "--port", str(shipped_port)),
        "hookline-large-batch": [
            context.python, "-m", "bench.apps", "hookline-large-batch",
            "--port", str(variant_port),
        ],
    }  # fmt: skip
    ports = {"hookline": shipped_port, "hookline-large-batch": variant_port}
    targets: dict[str, Target] = {}
    try:
        for name, command in commands.items():
            service = context.start(
                Service(
                    name,
                    command,
                    context.log_path(f"experiment-{name}"),
                    cpus=SERVER_CPU,
                    env={"HOOKLINE_CONFIG": str(config.path)},
                )
            )
            base = f"http://127.0.0.1:{ports[name]}"
            targets[name] = Target(name, service, f"{base}/webhooks/stripe", f"{base}/readyz")
            wait_for_http(service, targets[name].ready_url)
        runs = run_rounds(
            context,
            targets,
            stripe_secret(config),
            rounds=rounds,
            seconds=seconds,
            connections=connections,
            threads=1,
            wrk_cpus=LOAD_CPU,
        )
    finally:
        for target in targets.values():
            context.services.stop(target.service)

    summary = summarize(runs)
    shipped = summary["medians"]["hookline"]
    variant = summary["medians"]["hookline-large-batch"]
    return {
        "change": f"AIOKafkaProducer(max_batch_size={LARGE_BATCH_BYTES}) in ingest's producer",
        "server_cpus": SERVER_CPU,
        "wrk_cpus": LOAD_CPU,
        "broker_cpus": LOAD_CPU,
        "connections": connections,
        "wrk_threads": 1,
        "seconds": seconds,
        "rounds": rounds,
        "runs": runs,
        "medians": summary["medians"],
        "gain": variant["accepted_per_second"] / shipped["accepted_per_second"] - 1.0,
        "per_round_gain": [
            ours["accepted_per_second"] / theirs["accepted_per_second"] - 1.0
            for ours, theirs in zip(runs["hookline-large-batch"], runs["hookline"], strict=True)
        ],
    }
