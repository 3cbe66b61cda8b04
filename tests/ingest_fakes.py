"""Test doubles shared by the ingest application tests of verification schemes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

RAW_TOPIC = "test.raw"
REJECTED_TOPIC = "test.rejected"


@dataclass
class Record:
    """One record the application handed to the producer."""

    topic: str
    value: bytes
    key: bytes
    headers: dict[str, bytes]


@dataclass
class RecordingProducer:
    """RecordProducer test double that acknowledges at once and keeps every record."""

    connected: bool = True
    records: list[Record] = field(default_factory=list)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def check_ready(self) -> bool:
        return self.connected

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        self.records.append(Record(topic, value, key, dict(headers)))
        return object()

    def on(self, topic: str) -> list[Record]:
        """Return the records produced to TOPIC, oldest first."""
        return [record for record in self.records if record.topic == topic]

    def wait_for(self, topic: str, count: int, timeout_seconds: float = 5.0) -> list[Record]:
        """Wait until TOPIC has COUNT records, because rejections are produced in the background."""
        deadline = time.monotonic() + timeout_seconds
        while len(self.on(topic)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.on(topic)
