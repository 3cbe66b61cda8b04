"""What every benchmark stage shares: the broker, the folders, the started services, CPUs."""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.configs import PipelineNames, write_config
from bench.processes import Service, ServiceSet, wait_until
from hookline.broker import LocalBroker, find_free_ports
from hookline.config import HooklineConfig
from streams.topics import ensure_topics

# The server under test runs on SERVER_CPU, the load generator and the broker on LOAD_CPU.
SERVER_CPU = "0"
LOAD_CPU = "1"
READY_TIMEOUT_SECONDS = 90.0


def routed_topic(label: str) -> str:
    """Return the topic that the routing rules of pipeline LABEL send Stripe payments to."""
    return f"bench.{label}.payments"


@dataclass
class BenchContext:
    """Folders, the running broker and the services of one benchmark run.

    Args:
        results_dir: Where results, logs and profiles are written.
        work_dir: Scratch folder for configs, the broker's data and chDB folders.
        broker: The started Kafka broker that every stage uses.
        services: Every process the run started, stopped when the run ends.
    """

    results_dir: Path
    work_dir: Path
    broker: LocalBroker
    services: ServiceSet
    python: str = sys.executable
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def logs_dir(self) -> Path:
        """Folder for the output of each started process."""
        return self.results_dir / "logs"

    def log_path(self, name: str) -> Path:
        """Return the log file of the process labelled NAME."""
        return self.logs_dir / f"{name}.log"

    def names(self, label: str, **overrides: object) -> PipelineNames:
        """Return topics, groups, folders and free ports for a pipeline labelled LABEL."""
        ingest_port, query_port = find_free_ports(2)
        values: dict[str, object] = {
            "bootstrap_servers": self.broker.bootstrap_servers,
            "raw_topic": f"bench.{label}.raw",
            "rejected_topic": f"bench.{label}.rejected",
            "routed_topic": routed_topic(label),
            "router_app_id": f"bench-{label}-{self.run_id}",
            "router_data_dir": self.work_dir / f"router-{label}",
            "audit_dsn": f"chdb://{self.work_dir / f'chdb-{label}'}",
            "audit_group_id": f"bench-{label}-audit-{self.run_id}",
            "ingest_port": ingest_port,
            "query_port": query_port,
        }
        values.update(overrides)
        return PipelineNames(**values)  # type: ignore[arg-type]

    def config(self, label: str, **overrides: object) -> HooklineConfig:
        """Write a config for a pipeline labelled LABEL, create its topics and return it."""
        config = write_config(self.names(label, **overrides), self.work_dir, label)
        asyncio.run(ensure_topics(config))
        return config

    def hookline_command(self, config: HooklineConfig, *arguments: str) -> list[str]:
        """Return the command line of `hookline --config CONFIG ARGUMENTS...`."""
        return [self.python, "-m", "hookline.cli", "--config", str(config.path), *arguments]

    def start(self, service: Service) -> Service:
        """Start SERVICE and register it for the stop at the end of the run."""
        return self.services.start(service)


def wait_for_http(service: Service, url: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Wait until GET URL returns 200. Raises RuntimeError when SERVICE exits or time runs out."""

    def ready() -> bool:
        service.check_running()
        try:
            return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False

    if not wait_until(ready, timeout):
        raise RuntimeError(
            f"{service.name} did not return 200 at {url} within {timeout:.0f} s; last lines of "
            f"{service.log_path}:\n{service.log_tail()}"
        )
