"""Unit tests of bench.profile: grouping py-spy collapsed stacks by layer."""

import pytest

from bench.profile import (
    INGEST_LAYERS,
    Layer,
    LayerTable,
    frame_file,
    layer_of,
    summarize_stacks,
)

ROOT = "Runner.run (asyncio/runners.py:118)"
HANDLER = "WebhookReceiver.receive (ingest/receiver.py:217)"
SEND = "AIOKafkaProducer.send (aiokafka/producer/producer.py:480)"
HMAC = "HMAC.__init__ (hmac.py:61)"
LITESTAR = "ASGIRouter.__call__ (litestar/_asgi/asgi_router.py:112)"

STACKS = "\n".join(
    [
        f"{ROOT};{LITESTAR};{HANDLER};{SEND} 6",
        f"{ROOT};{LITESTAR};{HANDLER};{HMAC} 2",
        f"{ROOT};{LITESTAR} 1",
        f"{ROOT} 1",
        "malformed line",
    ]
)


def test_frame_file_reads_path():
    assert frame_file(SEND) == "aiokafka/producer/producer.py"


def test_layer_is_taken_nearest_leaf():
    assert layer_of([ROOT, LITESTAR, HANDLER, SEND]).startswith("Kafka producer")
    assert layer_of([ROOT, LITESTAR, HANDLER]).startswith("Hookline request handling")


def test_layer_of_unknown_frames_is_other():
    assert layer_of(["main (app.py:1)"]) == INGEST_LAYERS.other


def test_summarize_stacks_shares():
    profile = summarize_stacks(STACKS, root_share=0.95)
    assert profile.samples == 10
    assert profile.complete_share == pytest.approx(1.0)
    assert profile.layers["Kafka producer (aiokafka, ingest/producer.py)"] == pytest.approx(0.6)
    assert profile.layers["Signature check (ingest/schemes, hmac)"] == pytest.approx(0.2)
    functions = dict(profile.functions)
    assert functions["WebhookReceiver.receive (ingest/receiver.py)"] == pytest.approx(0.8)
    # The event loop starts every stack, so it is left out.
    assert "Runner.run (asyncio/runners.py)" not in functions
    assert "ASGIRouter.__call__ (litestar/_asgi/asgi_router.py)" in functions


def test_summarize_no_samples():
    profile = summarize_stacks("")
    assert profile.samples == 0
    assert profile.layers == {}


def test_summarize_counts_partial_stacks():
    text = f"{ROOT};{LITESTAR};{HANDLER} 3\n{LITESTAR};{HANDLER} 1\n"
    profile = summarize_stacks(text)
    assert profile.complete_share == pytest.approx(0.75)


TABLE = LayerTable(
    layers=(
        Layer("Connections of the worker", ("conn.py",), thread="worker"),
        Layer("Connections", ("conn.py",)),
        Layer("Handler", ("app.py",)),
    ),
    other="Other",
    entry_files=frozenset({"threading.py", "<frozen runpy>"}),
    thread_labels=(("worker", "Worker.run (pool.py"),),
)
MAIN_ROOT = "_run_module_as_main (<frozen runpy>:198)"
THREAD_ROOT = "Thread._bootstrap (threading.py:1002)"
WORKER_RUN = "Worker.run (pool.py:10)"
CONN = "Connection.send (conn.py:40)"
APP = "handle (app.py:5)"
THREADED_STACKS = "\n".join(
    [
        f"thread (101): MainThread;{MAIN_ROOT};{APP};{CONN} 5",
        f"thread (202): Thread-1 (run);{THREAD_ROOT};{WORKER_RUN};{CONN} 3",
        # Cut short: no frame of this stack names the thread, an earlier stack did.
        f"thread (202): Thread-1 (run);{CONN} 1",
        f"thread (303);{THREAD_ROOT};{APP} 1",
    ]
)


def test_layer_of_thread_limited_layer():
    assert layer_of([CONN], TABLE, "worker") == "Connections of the worker"
    assert layer_of([CONN], TABLE, "MainThread") == "Connections"
    assert layer_of([CONN], TABLE) == "Connections"


def test_summarize_threads_labels_and_shares():
    profile = summarize_stacks(THREADED_STACKS, TABLE, root_share=1.0)
    assert profile.samples == 10
    assert profile.threads == pytest.approx({"MainThread": 0.5, "worker": 0.4, "thread 303": 0.1})
    assert sum(profile.threads.values()) == pytest.approx(1.0)


def test_summarize_layers_by_thread():
    profile = summarize_stacks(THREADED_STACKS, TABLE, root_share=1.0)
    assert profile.layers["Connections"] == pytest.approx(0.5)
    assert profile.layers["Connections of the worker"] == pytest.approx(0.4)
    assert profile.layers_by_thread["worker"] == pytest.approx({"Connections of the worker": 0.4})
    assert profile.layers_by_thread["MainThread"] == pytest.approx({"Connections": 0.5})
    assert profile.layers_by_thread["thread 303"] == pytest.approx({"Handler": 0.1})


def test_summarize_thread_frame_is_not_a_function():
    profile = summarize_stacks(THREADED_STACKS, TABLE, root_share=1.0)
    functions = dict(profile.functions)
    assert not any(name.startswith("thread (") for name in functions)
    assert functions["Connection.send (conn.py)"] == pytest.approx(0.9)
    # Thread start-up frames come from entry files, so they are left out.
    assert "Thread._bootstrap (threading.py)" not in functions


def test_summarize_complete_share_skips_thread_frame():
    profile = summarize_stacks(THREADED_STACKS, TABLE)
    assert profile.complete_share == pytest.approx(0.9)


def test_summarize_without_threads_has_no_thread_shares():
    profile = summarize_stacks(STACKS)
    assert profile.threads == {}
    assert profile.layers_by_thread == {}
