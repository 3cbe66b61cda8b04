"""Unit tests of bench.profile: grouping py-spy collapsed stacks by layer."""

import pytest

from bench.profile import OTHER_LAYER, frame_file, layer_of, summarize_stacks

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
    assert layer_of(["main (app.py:1)"]) == OTHER_LAYER


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
