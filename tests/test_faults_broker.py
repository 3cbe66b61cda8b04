"""Fault test: the Kafka broker crashes under load and comes back.

The module starts a broker of its own, because the test kills it. While the
broker is down, ingest must send no 2xx response, because no acknowledgement
can come between the kill and the restart. The test checks every response to
a request that started after the kill and ended before the restart began.
Router and sink reconnect or are restarted as `hookline run` would restart
them, and in the end every 2xx'd event is routed once and every receipt is in
the audit table once (see `fault_checks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_checks import assert_nothing_lost, report, run_scenario
from load_client import LoadClient
from pipeline_support import Pipeline, running_broker, running_pipeline

from hookline.broker import LocalBroker

pytestmark = pytest.mark.integration

EVENTS = 2000
# Requests in flight at the kill wait for ingest's produce timeout (3 s) and the client's retry
# delay, so the window must be long enough for later requests to start and end inside it.
DOWN_SECONDS = 10.0
BROKER_READY_SECONDS = 120.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with running_broker(tmp_path_factory.mktemp("faults-broker-kafka")) as running:
        yield running


@pytest.fixture
def pipeline(broker: LocalBroker, tmp_path: Path) -> Iterator[Pipeline]:
    with running_pipeline(broker, tmp_path) as running:
        yield running


async def supervise(pipeline: Pipeline, stop: asyncio.Event) -> None:
    """Restart exited processes every half second, as the `hookline run` supervisor does."""
    while not stop.is_set():
        pipeline.restart_exited()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def test_broker_sigkill_mid_load(broker: LocalBroker, pipeline: Pipeline) -> None:
    window: dict[str, float] = {}

    async def kill_and_restart(client: LoadClient) -> None:
        await client.wait_accepted(EVENTS // 3)
        await asyncio.to_thread(broker.kill)
        window["down"] = time.monotonic()
        await asyncio.sleep(DOWN_SECONDS)
        window["up"] = time.monotonic()
        await asyncio.to_thread(broker.start)
        await asyncio.to_thread(broker.wait_ready, BROKER_READY_SECONDS)

    stop = asyncio.Event()
    supervisor = asyncio.create_task(supervise(pipeline, stop))
    try:
        result, load = await run_scenario("broker SIGKILL", pipeline, EVENTS, kill_and_restart)
    finally:
        stop.set()
        await supervisor

    answered_while_down = [
        attempt
        for attempt in load.attempts()
        if attempt.status is not None
        and attempt.started >= window["down"]
        and attempt.ended <= window["up"]
    ]
    accepted_while_down = [attempt for attempt in answered_while_down if attempt.status < 300]
    result.details["answered_while_down"] = len(answered_while_down)
    result.details["2xx_while_down"] = len(accepted_while_down)
    result.details["restarts"] = dict(pipeline.restarts)
    report(result)

    assert answered_while_down, "ingest answered no request while the broker was down"
    assert not accepted_while_down, f"2xx while the broker was down: {accepted_while_down[:3]}"
    assert_nothing_lost(result)
