"""Unit tests of audit DSNs, data folder locks and run_query without a running sink."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hookline.config import HooklineConfig, parse_config
from hookline.errors import ConfigError
from hookline.records import Delivery
from sinks.audit import AuditSink
from sinks.client import create_tables, insert_rows, open_client
from sinks.dsn import embedded_path, normalize_dsn, redact_dsn
from sinks.errors import DataFolderLockedError, QueryError
from sinks.folder import lock_owner
from sinks.query import run_query
from sinks.query_server import check_loopback
from sinks.rows import event_row
from sinks.schema import EVENT_COLUMNS

REPO = Path(__file__).resolve().parent.parent


@dataclass
class FakeRecord:
    """The ConsumerRecord fields the sink reads."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: Any
    timestamp: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def audit_config(dsn: str) -> HooklineConfig:
    return parse_config({"audit": {"dsn": dsn, "query_port": free_port()}})


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        pytest.param("chdb:///var/lib/audit", "chdb:///var/lib/audit", id="absolute"),
        pytest.param("chdb://data/clickhouse", "chdb:///srv/app/data/clickhouse", id="relative"),
        pytest.param("chdb:data/clickhouse", "chdb:///srv/app/data/clickhouse", id="no-slashes"),
        pytest.param("chdb://audit", "chdb:///srv/app/audit", id="one-segment"),
        pytest.param("chdb:///a/b?verbose=1", "chdb:///a/b?verbose=1", id="query-kept"),
        pytest.param(" chdb:///a/b ", "chdb:///a/b", id="spaces"),
        pytest.param("http://ch:8123/audit", "http://ch:8123/audit", id="http"),
        pytest.param("https://u:p@ch:8443/db", "https://u:p@ch:8443/db", id="https"),
    ],
)
def test_normalize_dsn(dsn: str, expected: str) -> None:
    assert normalize_dsn(dsn, cwd=Path("/srv/app")) == expected


def test_normalize_dsn_default_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    assert normalize_dsn("chdb://data/clickhouse") == f"chdb://{tmp_path}/data/clickhouse"


def test_normalize_dsn_example_config() -> None:
    from hookline.config import load_config

    config = load_config(REPO / "config" / "hookline.toml")

    normalized = normalize_dsn(config.audit.dsn, cwd=REPO)

    assert embedded_path(normalized) == REPO / "data" / "clickhouse"


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        pytest.param("chdb://memory", "in-memory", id="memory"),
        pytest.param("chdb://:memory:", "in-memory", id="colon-memory"),
        pytest.param("chdb://", "no data folder", id="no-folder"),
        pytest.param("clickhouse://ch:9000", "unknown scheme", id="native-protocol"),
        pytest.param("/var/lib/audit", "unknown scheme", id="bare-path"),
        pytest.param("http:///db", "no host", id="http-no-host"),
    ],
)
def test_normalize_dsn_rejects(dsn: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalize_dsn(dsn)


def test_embedded_path_of_server_dsn() -> None:
    assert embedded_path("http://ch:8123/db") is None
    assert embedded_path("chdb:///a/b") == Path("/a/b")


def test_redact_dsn_hides_password() -> None:
    assert redact_dsn("http://writer:s3cret@ch:8123/db") == "http://writer:***@ch:8123/db"
    assert redact_dsn("http://ch:8123/db") == "http://ch:8123/db"


def test_redacted_dsn_in_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        normalize_dsn("ftp://writer:s3cret@ch/db")

    assert "s3cret" not in str(caught.value)


@pytest.fixture
def folder_holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A child process that keeps a chDB data folder open until killed."""
    folder = tmp_path / "held"
    script = textwrap.dedent(
        f"""
        import sys, time
        import clickhouse_connect
        client = clickhouse_connect.get_client(dsn="chdb://{folder}")
        print("opened", flush=True)
        time.sleep(120)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "opened"
        yield folder, process
    finally:
        process.kill()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def test_lock_owner_names_holder(folder_holder: tuple[Path, subprocess.Popen[str]]) -> None:
    folder, process = folder_holder

    assert lock_owner(folder) == process.pid

    process.kill()
    process.wait(timeout=30)
    assert lock_owner(folder) is None


def test_lock_owner_of_missing_folder(tmp_path: Path) -> None:
    assert lock_owner(tmp_path / "absent") is None


def test_open_client_locked_folder(folder_holder: tuple[Path, subprocess.Popen[str]]) -> None:
    folder, process = folder_holder

    with pytest.raises(DataFolderLockedError) as caught:
        open_client(normalize_dsn(f"chdb://{folder}"))

    assert caught.value.owner_pid == process.pid
    assert str(process.pid) in str(caught.value)


def test_run_query_locked_folder(folder_holder: tuple[Path, subprocess.Popen[str]]) -> None:
    folder, process = folder_holder
    config = audit_config(f"chdb://{folder}")

    with pytest.raises(QueryError) as caught:
        run_query(config, "SELECT 1")

    assert f"locked by process {process.pid}" in str(caught.value)
    assert "no audit sink listens" in str(caught.value)


def test_run_query_opens_folder_without_sink(tmp_path: Path) -> None:
    folder = tmp_path / "clickhouse"
    dsn = normalize_dsn(f"chdb://{folder}")
    client = open_client(dsn)
    try:
        create_tables(client, "webhook_events", "webhook_rejections")
        item = Delivery(str(uuid.uuid4()), "stripe", datetime.now(UTC), b"\xffbinary")
        row = event_row(FakeRecord("webhooks.raw", 0, 4, item.body, item.kafka_headers()))
        insert_rows(client, "webhook_events", EVENT_COLUMNS, [row.values], "t")
    finally:
        client.close()

    columns, rows = run_query(
        audit_config(dsn), "SELECT offset, hex(body), source FROM webhook_events"
    )

    assert columns == ["offset", "hex(body)", "source"]
    assert rows == [(4, "FF62696E617279", "stripe")]
    assert lock_owner(folder) is None


def test_run_query_bad_sql_message(tmp_path: Path) -> None:
    folder = tmp_path / "clickhouse"
    folder.mkdir()

    with pytest.raises(QueryError, match="UNKNOWN_TABLE|Unknown table"):
        run_query(audit_config(f"chdb://{folder}"), "SELECT * FROM no_such_table")


def test_run_query_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "absent"

    with pytest.raises(QueryError, match="does not exist"):
        run_query(audit_config(f"chdb://{folder}"), "SELECT 1")

    assert not folder.exists()


def test_run_query_http_refused() -> None:
    config = audit_config(f"http://127.0.0.1:{free_port()}/default")
    started = time.monotonic()

    with pytest.raises(QueryError, match="cannot open the audit log"):
        run_query(config, "SELECT 1")

    assert time.monotonic() - started < 30


async def test_sink_start_locked_folder(
    folder_holder: tuple[Path, subprocess.Popen[str]],
) -> None:
    folder, process = folder_holder
    sink = AuditSink(audit_config(f"chdb://{folder}"))

    with pytest.raises(DataFolderLockedError) as caught:
        await sink.start()

    assert caught.value.owner_pid == process.pid


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_check_loopback_accepts(host: str) -> None:
    check_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com", "::"])
def test_check_loopback_rejects(host: str) -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        check_loopback(host)
