"""Unit tests of bench.router_profile: the router's layers and threads, and the recorder."""

from pathlib import Path

import pytest

from bench import router_bench
from bench.kafka_tools import TopicCount
from bench.processes import Service
from bench.profile import PY_SPY_INSTALL_HINT, layer_of, summarize_stacks
from bench.router_profile import (
    AIOKAFKA_CONSUMER,
    AIOKAFKA_PRODUCER,
    CONSUMER_THREAD,
    ROUTER_LAYERS,
    RouterRecorder,
)

# Frames as py-spy 0.4 writes them for the router, with --threads.
MAIN = "thread (31586): MainThread"
CONSUMER = "thread (31588): Thread-1"
MAIN_ROOT = ";".join(
    [
        "_run_module_as_main (<frozen runpy>:198)",
        "run (streams/worker.py:40)",
        "BaseEventLoop._run_once (asyncio/base_events.py:1922)",
        "Handle._run (asyncio/events.py:80)",
    ]
)
CONSUMER_ROOT = ";".join(
    [
        "Thread._bootstrap (threading.py:1002)",
        "WorkerThread.run (mode/threads.py:62)",
        "BaseEventLoop._run_once (asyncio/base_events.py:1922)",
        "Handle._run (asyncio/events.py:80)",
    ]
)
AGENT = "create_app.<locals>.route (streams/app.py:470)"
PRODUCE = "produce (streams/app.py:396)"
FAUST_SEND = "Producer.send (faust/transport/drivers/aiokafka.py:1340)"
AIOKAFKA_SEND = "AIOKafkaProducer.send (aiokafka/producer/producer.py:480)"
STREAM = "Stream._c_aiter (faust/streams.py:880)"
FETCH = "Fetcher._proc_fetch_request (aiokafka/consumer/fetcher.py:747)"
CLIENT_SEND = "AIOKafkaClient.send (aiokafka/client.py:474)"
CONN_SEND = "AIOKafkaConnection.send (aiokafka/conn.py:423)"
CONN_READ = "AIOKafkaConnection._read (aiokafka/conn.py:540)"
SELECT = "EpollSelector.select (selectors.py:468)"
LOCK = "Lock.acquire (asyncio/locks.py:114)"

STACKS = "\n".join(
    [
        f"{MAIN};{MAIN_ROOT};{AGENT};{PRODUCE};{FAUST_SEND};{AIOKAFKA_SEND} 4",
        f"{MAIN};{MAIN_ROOT};{AGENT};{STREAM} 3",
        f"{MAIN};{MAIN_ROOT};{AGENT};{LOCK} 1",
        f"{MAIN};{CONN_READ} 2",
        f"{MAIN};{SELECT} 2",
        f"{CONSUMER};{CONSUMER_ROOT};{FETCH};{CLIENT_SEND};{CONN_SEND} 3",
        # Cut short: the thread is known from its complete stacks.
        f"{CONSUMER};{CONN_READ} 1",
        f"{CONSUMER};{CONSUMER_ROOT};{SELECT} 4",
    ]
)


def test_router_layer_producer_leaf():
    frames = [AGENT, PRODUCE, FAUST_SEND, AIOKAFKA_SEND]
    assert layer_of(frames, ROUTER_LAYERS, "MainThread") == AIOKAFKA_PRODUCER


def test_router_layer_router_code_leaf():
    frames = [STREAM, AGENT]
    assert layer_of(frames, ROUTER_LAYERS, "MainThread").startswith("Hookline router code")


def test_router_layer_faust_under_agent():
    frames = [AGENT, STREAM]
    assert layer_of(frames, ROUTER_LAYERS, "MainThread").startswith("Faust and mode")


def test_router_layer_connection_by_thread():
    assert layer_of([CONN_READ], ROUTER_LAYERS, CONSUMER_THREAD) == AIOKAFKA_CONSUMER
    assert layer_of([CONN_READ], ROUTER_LAYERS, "MainThread") == AIOKAFKA_PRODUCER


def test_router_layer_fetcher_in_any_thread():
    assert layer_of([FETCH], ROUTER_LAYERS, "MainThread") == AIOKAFKA_CONSUMER


def test_router_layer_select_is_event_loop():
    assert layer_of([SELECT], ROUTER_LAYERS, "MainThread").startswith("asyncio event loop")
    assert layer_of([LOCK], ROUTER_LAYERS, "MainThread").startswith("asyncio tasks")


def test_router_summary_threads():
    profile = summarize_stacks(STACKS, ROUTER_LAYERS)
    assert profile.samples == 20
    assert profile.threads == pytest.approx({"MainThread": 0.6, CONSUMER_THREAD: 0.4})


def test_router_summary_layer_shares_add_up():
    profile = summarize_stacks(STACKS, ROUTER_LAYERS)
    assert sum(profile.layers.values()) == pytest.approx(1.0)
    assert profile.layers[AIOKAFKA_PRODUCER] == pytest.approx(0.3)
    assert profile.layers[AIOKAFKA_CONSUMER] == pytest.approx(0.2)
    for thread, layers in profile.layers_by_thread.items():
        assert sum(layers.values()) == pytest.approx(profile.threads[thread])


def test_router_summary_complete_share():
    profile = summarize_stacks(STACKS, ROUTER_LAYERS)
    # The stacks that start at a connection read or at select lack their outer frames.
    assert profile.complete_share == pytest.approx(0.75)


def test_router_summary_leaves_entry_frames_out():
    functions = dict(summarize_stacks(STACKS, ROUTER_LAYERS).functions)
    assert "run (streams/worker.py)" not in functions
    assert "WorkerThread.run (mode/threads.py)" in functions
    assert functions[f"{AGENT.partition(' (')[0]} (streams/app.py)"] == pytest.approx(0.4)


def _service(tmp_path: Path) -> Service:
    return Service("router", ["true"], tmp_path / "router.log")


def test_recorder_waits_for_first_record(tmp_path):
    recorder = RouterRecorder(tmp_path, seconds=1)
    recorder.observe(_service(tmp_path), TopicCount())
    recorder.wait()
    with pytest.raises(RuntimeError, match="routed no record"):
        recorder.summary()


def test_recorder_writes_into_results_dir(tmp_path):
    recorder = RouterRecorder(tmp_path, seconds=1)
    assert recorder.stacks_path == tmp_path / "router-stacks.txt"
    assert recorder.svg_path == tmp_path / "router.svg"


def test_router_bench_skips_profile_without_py_spy(monkeypatch):
    def missing() -> str:
        raise RuntimeError(PY_SPY_INSTALL_HINT)

    monkeypatch.setattr(router_bench, "py_spy_path", missing)
    # The context is not reached when py-spy is missing.
    result = router_bench._profile_router(None, "raw", 10, 1.0, 3)
    assert result == {"skipped": PY_SPY_INSTALL_HINT}
