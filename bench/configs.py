"""Hookline config files for benchmark runs, derived from the shipped `config/hookline.toml`.

A benchmark config keeps the shipped `[kafka]` tuning (linger, produce timeout) and the
shipped `[sources.stripe]` table, and replaces every address, topic, folder and port with
the benchmark's own, so a run never touches a pipeline started with `make run`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hookline.config import HooklineConfig, load_config

REPOSITORY = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPOSITORY / "config" / "hookline.toml"
SOURCE = "stripe"


@dataclass(frozen=True)
class PipelineNames:
    """Topics, tables, groups, folders and ports of one benchmark pipeline."""

    bootstrap_servers: str
    raw_topic: str
    rejected_topic: str
    routed_topic: str
    router_app_id: str
    router_data_dir: Path
    audit_dsn: str
    audit_group_id: str
    ingest_port: int
    query_port: int
    batch_max_rows: int = 5000
    batch_max_seconds: float = 0.5


def toml_value(value: Any) -> str:
    """Return VALUE (str, bool, int, float, Path or a list of them) as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, str):
        # A JSON string of printable text is also a valid TOML basic string.
        return json.dumps(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} value {value!r} has no TOML form here")


def toml_document(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """Return SECTIONS (table name to its keys) as a TOML document."""
    lines: list[str] = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
        lines.append("")
    return "\n".join(lines)


def routes_document(source: str, event_type: str, topic: str) -> str:
    """Return a routing rules file with one rule: SOURCE events of EVENT_TYPE go to TOPIC."""
    rule = {"source": source, "type": event_type, "topics": [topic]}
    lines = ["[[route]]", *(f"{key} = {toml_value(value)}" for key, value in rule.items())]
    return "\n".join(lines) + "\n"


def shipped_settings(path: Path = SHIPPED_CONFIG) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the shipped `[kafka]` table and `[sources.stripe]` table as parsed TOML."""
    with path.open("rb") as file:
        raw = tomllib.load(file)
    return dict(raw.get("kafka", {})), dict(raw["sources"][SOURCE])


def write_config(names: PipelineNames, folder: Path, label: str) -> HooklineConfig:
    """Write `<label>.toml` and its routing rules into FOLDER and return the loaded config."""
    kafka, stripe = shipped_settings()
    rules_path = folder / f"{label}-routes.toml"
    rules_path.write_text(routes_document(SOURCE, "payment_intent.*", names.routed_topic))

    sections: dict[str, dict[str, Any]] = {
        "kafka": {
            "bootstrap_servers": names.bootstrap_servers,
            "raw_topic": names.raw_topic,
            "rejected_topic": names.rejected_topic,
            "produce_timeout_seconds": kafka.get("produce_timeout_seconds", 5.0),
            "linger_ms": kafka.get("linger_ms", 2),
            "client_id": f"hookline-bench-{label}",
        },
        "ingest": {"host": "127.0.0.1", "port": names.ingest_port},
        "router": {
            "app_id": names.router_app_id,
            "rules_file": rules_path,
            "data_dir": names.router_data_dir,
            # 0 turns Faust's web server off, so no port can collide.
            "web_port": 0,
        },
        "audit": {
            "dsn": names.audit_dsn,
            "group_id": names.audit_group_id,
            "batch_max_rows": names.batch_max_rows,
            "batch_max_seconds": names.batch_max_seconds,
            "query_host": "127.0.0.1",
            "query_port": names.query_port,
        },
        f"sources.{SOURCE}": stripe,
    }
    path = folder / f"{label}.toml"
    path.write_text(toml_document(sections))
    return load_config(path)
