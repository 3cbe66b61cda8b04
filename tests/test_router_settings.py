"""Unit tests of the router's Kafka settings: commit interval, concurrent commits, fetch wait."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest

from hookline.config import ConfigError, parse_config
from streams.app import (
    FETCH_MAX_WAIT_MS,
    _app_settings,
    _commit_transactions_concurrently,
    _log_offset_gaps,
    create_app,
)


def test_commit_interval_default_reaches_faust():
    config = parse_config({})

    settings = _app_settings(config, "memory://")

    assert settings["broker_commit_interval"] == config.router.commit_interval_seconds


def test_commit_interval_from_config():
    config = parse_config({"router": {"commit_interval_seconds": 0.05}})

    assert _app_settings(config, "memory://")["broker_commit_interval"] == 0.05


@pytest.mark.parametrize("value", [0, -1.0, "fast", True])
def test_commit_interval_invalid(value):
    with pytest.raises(ConfigError, match="router.commit_interval_seconds"):
        parse_config({"router": {"commit_interval_seconds": value}})


async def test_worker_consumer_fetch_wait_short():
    # With Faust's own value of 1.5 s, each offset request of table recovery
    # waited as long, behind an idle fetch on the same connection.
    app = create_app(parse_config({}), store="memory://")

    kafka_consumer = app.consumer._thread._create_worker_consumer(app.transport)

    try:
        assert kafka_consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100
    finally:
        await kafka_consumer.stop()


class FakeTransactionProducer:
    """Records the transaction calls of one transactional id. Each commit waits for RELEASE."""

    def __init__(self, name: str, started: list[str], release: asyncio.Event) -> None:
        self.name = name
        self.started = started
        self.release = release
        self.calls: list[tuple[str, Any]] = []

    async def send_offsets_to_transaction(self, offsets: Any, group_id: str) -> None:
        self.calls.append(("offsets", (offsets, group_id)))

    async def commit_transaction(self) -> None:
        self.started.append(self.name)
        await self.release.wait()
        self.calls.append(("commit", None))

    async def begin_transaction(self) -> None:
        self.calls.append(("begin", None))


def fake_producer(names: list[str], started: list[str], release: asyncio.Event) -> Any:
    producer = SimpleNamespace(
        _trn_locks={name: asyncio.Lock() for name in names},
        _transaction_producers={
            name: FakeTransactionProducer(name, started, release) for name in names
        },
    )
    _commit_transactions_concurrently(producer)
    return producer


async def test_commits_run_concurrently():
    started: list[str] = []
    release = asyncio.Event()
    producer = fake_producer(["app-0-0", "app-0-1"], started, release)
    offsets = {"app-0-0": {"tp0": 5}, "app-0-1": {"tp1": 7}}

    commit = asyncio.create_task(producer.commit_transactions(offsets, "app"))
    for _ in range(100):
        if len(started) == 2:
            break
        await asyncio.sleep(0)
    # Both commits began before either was allowed to finish.
    assert sorted(started) == ["app-0-0", "app-0-1"]
    release.set()
    await commit

    for name, expected in offsets.items():
        calls = producer._transaction_producers[name].calls
        assert calls == [("offsets", (expected, "app")), ("commit", None), ("begin", None)]


async def test_commit_without_new_transaction():
    release = asyncio.Event()
    release.set()
    producer = fake_producer(["app-0-0"], [], release)

    await producer.commit_transactions({"app-0-0": {"tp0": 1}}, "app", start_new_transaction=False)

    calls = producer._transaction_producers["app-0-0"].calls
    assert [name for name, _ in calls] == ["offsets", "commit"]


async def test_commit_unknown_transaction_skipped(caplog):
    release = asyncio.Event()
    release.set()
    producer = fake_producer(["app-0-0"], [], release)
    producer._trn_locks["app-0-9"] = asyncio.Lock()

    await producer.commit_transactions({"app-0-0": {"tp0": 1}, "app-0-9": {"tp9": 2}}, "app")

    assert [name for name, _ in producer._transaction_producers["app-0-0"].calls] == [
        "offsets",
        "commit",
        "begin",
    ]
    assert "Commit for unknown transaction app-0-9 skipped" in caplog.text


class TP(NamedTuple):
    topic: str
    partition: int


async def test_offset_gap_logged_and_kept(caplog):
    added: list[tuple[Any, int, int]] = []

    async def add_gap(tp: Any, offset_from: int, offset_to: int) -> None:
        added.append((tp, offset_from, offset_to))

    consumer = SimpleNamespace(_add_gap=add_gap, _acked_index={}, _committed_offset={})
    _log_offset_gaps(consumer)
    tp = TP("webhooks.raw", 3)

    await consumer._add_gap(tp, 186, 187)

    assert added == [(tp, 186, 187)]
    assert "skipped offsets 186 to 186 of webhooks.raw[3]" in caplog.text
    assert "may commit past 1 of them" in caplog.text


async def test_offset_gap_of_acked_offsets_not_warned(caplog):
    async def add_gap(tp: Any, offset_from: int, offset_to: int) -> None:
        pass

    tp = TP("webhooks.raw", 2)
    consumer = SimpleNamespace(
        _add_gap=add_gap, _acked_index={tp: {206, 207, 208}}, _committed_offset={tp: 205}
    )
    _log_offset_gaps(consumer)

    with caplog.at_level("INFO", logger="streams.app"):
        await consumer._add_gap(tp, 206, 209)

    assert "takes them as a gap" not in caplog.text
    assert "which the router has processed already" in caplog.text
