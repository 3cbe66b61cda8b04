"""Typed configuration of a Hookline deployment, loaded from one TOML file.

The file has a section per part of the pipeline (`[kafka]`, `[ingest]`,
`[router]`, `[audit]`) and one `[sources.<name>]` table per webhook source.
`config/hookline.toml` in the repository is the documented example. Any value
of the form `env:NAME` is read from the environment variable NAME, so secrets
need not be written into the file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hookline.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/hookline.toml")
CONFIG_ENV_VAR = "HOOKLINE_CONFIG"

SOURCE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LOCATOR_PREFIXES = ("header:", "json:")


@dataclass(frozen=True)
class KafkaConfig:
    """Broker address and the topic names shared by every part."""

    bootstrap_servers: str = "127.0.0.1:9092"
    raw_topic: str = "webhooks.raw"
    rejected_topic: str = "webhooks.rejected"
    # Upper bound on how long ingest waits for the broker to acknowledge a
    # record before it responds with 503.
    produce_timeout_seconds: float = 5.0
    linger_ms: int = 2
    client_id: str = "hookline"


@dataclass(frozen=True)
class IngestConfig:
    """HTTP listener of the ingest service."""

    host: str = "127.0.0.1"
    port: int = 8000
    # Seconds sent in Retry-After with a 503 while the broker is unavailable.
    retry_after_seconds: int = 5
    # Longest rejected body kept in the rejection record, in bytes.
    rejected_body_max_bytes: int = 4096
    # Seconds a client has to send a request line and headers, counted from the
    # moment it connects or got its previous response. Idle or slower clients
    # are disconnected, so they cannot hold connections open indefinitely.
    request_head_timeout_seconds: float = 10.0
    # Largest request line plus headers, in bytes. A larger head gets 431.
    max_request_head_bytes: int = 64 * 1024
    # Seconds a client has to send the whole body once ingest starts reading
    # it. A slower body gets 408 and the connection is closed.
    body_read_timeout_seconds: float = 30.0
    # Seconds an idle keep-alive connection stays open after a response.
    keep_alive_timeout_seconds: int = 5
    # Requests remembered per source for replay detection. When full, the entry
    # closest to expiry is evicted first.
    replay_cache_max_entries: int = 100_000


@dataclass(frozen=True)
class RouterConfig:
    """Faust router: deduplication window and the topics it writes to."""

    app_id: str = "hookline-router"
    rules_file: Path = Path("config/routes.toml")
    data_dir: Path = Path("data/router")
    dedupe_window_seconds: int = 7 * 24 * 3600
    default_topic_template: str = "events.{source}"
    unrouted_topic: str = "webhooks.unrouted"
    dead_letter_topic: str = "webhooks.deadletter"
    web_port: int = 6066
    # Faust store of the deduplication table: "memory://" or "rocksdb://".
    table_store: str = "memory://"
    # How often the router commits its transaction per raw partition. Consumers
    # of routed topics (read_committed) see a record only after the commit, and
    # each commit pauses routing for a few broker round trips.
    commit_interval_seconds: float = 0.1


@dataclass(frozen=True)
class AuditConfig:
    """Audit sink: where the audit log lives and how rows are batched."""

    dsn: str = "chdb:///data/clickhouse"
    events_table: str = "webhook_events"
    rejections_table: str = "webhook_rejections"
    group_id: str = "hookline-audit"
    batch_max_rows: int = 5000
    batch_max_seconds: float = 0.5
    # Loopback port where the sink serves read-only SQL in embedded mode,
    # because only the process that owns a chDB data folder may open it.
    query_host: str = "127.0.0.1"
    query_port: int = 8124


@dataclass(frozen=True)
class SourceConfig:
    """One webhook source: its verification scheme and where its ids are."""

    name: str
    scheme: str
    secrets: tuple[str, ...] = ()
    tolerance_seconds: int | None = None
    # Locators: "header:<Name>" or "json:<JSON pointer>", for example
    # "header:X-GitHub-Delivery" or "json:/type".
    event_id: str | None = None
    event_type: str | None = None
    # The entity an event is about (for example "json:/data/object/id" for
    # Stripe). Events of one entity share a partition and so keep their order.
    entity_key: str | None = None
    max_body_bytes: int = 1024 * 1024
    content_types: tuple[str, ...] = ("application/json",)
    options: dict[str, Any] = field(default_factory=dict)
    # Client networks in CIDR notation ("192.0.2.0/24", "2001:db8::/32"). When
    # set, requests from any other address get 403; empty allows every address.
    allowed_networks: tuple[str, ...] = ()
    # Seconds a verified request is remembered, so that an identical copy is
    # rejected as a replay (409). None selects tolerance_seconds for schemes
    # that sign a timestamp and 0 for the others; 0 disables the check.
    replay_window_seconds: int | None = None
    # Token bucket per source and ingest process: sustained requests per second
    # and how many may arrive at once above that. None means unlimited.
    rate_limit_per_second: float | None = None
    rate_limit_burst: int | None = None


@dataclass(frozen=True)
class HooklineConfig:
    """The whole deployment."""

    kafka: KafkaConfig = KafkaConfig()
    ingest: IngestConfig = IngestConfig()
    router: RouterConfig = RouterConfig()
    audit: AuditConfig = AuditConfig()
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    path: Path | None = None


def resolve_value(value: str) -> str:
    """Return VALUE, or the environment variable it names with `env:NAME`."""
    if not value.startswith("env:"):
        return value

    name = value.removeprefix("env:")
    resolved = os.environ.get(name)
    if resolved is None:
        raise ConfigError(f"environment variable {name} is not set; export it or edit the config")
    return resolved


def _section(cls: type, raw: dict[str, Any], section: str) -> Any:
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} in [{section}]; "
            f"expected some of {', '.join(sorted(known))}"
        )

    values: dict[str, Any] = {}
    for key, value in raw.items():
        default = cls.__dataclass_fields__[key].default
        if isinstance(default, Path):
            value = Path(value)
        elif isinstance(value, str):
            value = resolve_value(value)
        values[key] = value
    return cls(**values)


def _check_locator(source: str, key: str, locator: str | None) -> None:
    if locator is None or locator.startswith(LOCATOR_PREFIXES):
        return
    raise ConfigError(
        f"source {source!r}: {key} = {locator!r} is invalid; "
        "use 'header:<Header-Name>' or 'json:/json/pointer'"
    )


def _networks(source: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"source {source!r}: allowed_networks must be a list of CIDR strings")

    networks = []
    for entry in value:
        try:
            networks.append(str(ipaddress.ip_network(str(entry).strip())))
        except ValueError as error:
            raise ConfigError(
                f"source {source!r}: allowed_networks entry {entry!r} is invalid ({error}); "
                "use CIDR notation such as 192.0.2.0/24 or 2001:db8::/32"
            ) from None
    return tuple(networks)


def _source(name: str, raw: dict[str, Any]) -> SourceConfig:
    if not SOURCE_NAME_PATTERN.match(name):
        raise ConfigError(
            f"source name {name!r} is invalid; use 1-64 lower-case letters, digits, '-' or '_'"
        )
    if "scheme" not in raw:
        raise ConfigError(f"source {name!r} has no scheme; set scheme = 'stripe', 'github', ...")

    raw = dict(raw)
    secrets = raw.pop("secrets", [])
    if isinstance(secrets, str):
        secrets = [secrets]
    content_types = raw.pop("content_types", ["application/json"])
    allowed_networks = _networks(name, raw.pop("allowed_networks", []))
    fields = set(SourceConfig.__dataclass_fields__) - {
        "name",
        "secrets",
        "content_types",
        "allowed_networks",
    }
    options = {key: raw.pop(key) for key in list(raw) if key not in fields}
    options.update(raw.pop("options", {}))

    source = SourceConfig(
        name=name,
        secrets=tuple(resolve_value(secret) for secret in secrets),
        content_types=tuple(ct.lower() for ct in content_types),
        options=options,
        allowed_networks=allowed_networks,
        **raw,
    )
    _check_locator(name, "event_id", source.event_id)
    _check_locator(name, "event_type", source.event_type)
    _check_locator(name, "entity_key", source.entity_key)
    if source.max_body_bytes <= 0:
        raise ConfigError(f"source {name!r}: max_body_bytes must be positive")
    _check_limits(source)
    return source


def _check_limits(source: SourceConfig) -> None:
    window = source.replay_window_seconds
    if window is not None and (type(window) is not int or window < 0):
        raise ConfigError(
            f"source {source.name!r}: replay_window_seconds = {window!r} is invalid; "
            "use 0 (off) or a whole number of seconds"
        )

    rate = source.rate_limit_per_second
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise ConfigError(
            f"source {source.name!r}: rate_limit_per_second = {rate!r} is invalid; use a number"
        )
    if rate is not None and rate <= 0:
        raise ConfigError(
            f"source {source.name!r}: rate_limit_per_second = {rate!r} is invalid; "
            "use a positive number, or remove it for no limit"
        )

    burst = source.rate_limit_burst
    if burst is not None and (type(burst) is not int or burst < 1):
        raise ConfigError(
            f"source {source.name!r}: rate_limit_burst = {burst!r} is invalid; "
            "use a whole number of at least 1"
        )
    if burst is not None and rate is None:
        raise ConfigError(
            f"source {source.name!r}: rate_limit_burst is set without rate_limit_per_second; "
            "set both"
        )


def parse_config(raw: dict[str, Any], path: Path | None = None) -> HooklineConfig:
    """Build a HooklineConfig from the parsed TOML document RAW."""
    raw = dict(raw)
    sources_raw = raw.pop("sources", {})
    sections = {
        "kafka": KafkaConfig,
        "ingest": IngestConfig,
        "router": RouterConfig,
        "audit": AuditConfig,
    }
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(
            f"unknown section(s) {', '.join(unknown)}; expected {', '.join(sections)} or sources"
        )

    parts = {name: _section(cls, raw.get(name, {}), name) for name, cls in sections.items()}
    interval = parts["router"].commit_interval_seconds
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(
            f"router.commit_interval_seconds = {interval!r} is invalid; use a positive number"
        )
    sources = {name: _source(name, value) for name, value in sources_raw.items()}
    return HooklineConfig(**parts, sources=sources, path=path)


def load_config(path: Path | str | None = None) -> HooklineConfig:
    """Load the config from PATH, $HOOKLINE_CONFIG, or config/hookline.toml."""
    if path is None:
        path = os.environ.get(CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH)
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; pass --config or set {CONFIG_ENV_VAR}"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    return parse_config(raw, path)
