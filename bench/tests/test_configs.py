"""Unit tests of bench.configs: the TOML writer and the benchmark config."""

import tomllib
from pathlib import Path

import pytest

from bench.configs import PipelineNames, routes_document, toml_document, write_config


def test_toml_document_round_trips():
    sections = {
        "kafka": {"servers": 'a"b', "linger_ms": 2, "timeout": 5.5, "enabled": True},
        "sources.stripe": {"secrets": ["x", "y"], "folder": Path("/tmp/x")},
    }
    parsed = tomllib.loads(toml_document(sections))
    assert parsed["kafka"] == {"servers": 'a"b', "linger_ms": 2, "timeout": 5.5, "enabled": True}
    assert parsed["sources"]["stripe"] == {"secrets": ["x", "y"], "folder": "/tmp/x"}


def test_toml_document_rejects_unknown_type():
    with pytest.raises(TypeError, match="no TOML form"):
        toml_document({"a": {"b": object()}})


def test_routes_document_is_one_rule():
    parsed = tomllib.loads(routes_document("stripe", "payment_intent.*", "bench.x.payments"))
    assert parsed["route"] == [
        {"source": "stripe", "type": "payment_intent.*", "topics": ["bench.x.payments"]}
    ]


def test_write_config_uses_bench_names(tmp_path):
    names = PipelineNames(
        bootstrap_servers="127.0.0.1:1",
        raw_topic="bench.t.raw",
        rejected_topic="bench.t.rejected",
        routed_topic="bench.t.payments",
        router_app_id="bench-t",
        router_data_dir=tmp_path / "router",
        audit_dsn=f"chdb://{tmp_path / 'chdb'}",
        audit_group_id="bench-t-audit",
        ingest_port=1234,
        query_port=1235,
        batch_max_rows=1000,
    )
    config = write_config(names, tmp_path, "t")
    assert config.kafka.raw_topic == "bench.t.raw"
    assert config.ingest.port == 1234
    assert config.router.web_port == 0
    assert config.audit.query_port == 1235
    assert config.audit.batch_max_rows == 1000
    assert list(config.sources) == ["stripe"]
    assert config.sources["stripe"].scheme == "stripe"
