"""Read-only SQL on the audit log, wherever it lives.

- chDB DSN and a sink listens on `audit.query_host`:`audit.query_port`: the
  query goes to the sink, which owns the data folder.
- chDB DSN and no sink runs: the data folder is opened in this process, which
  chDB allows only while no other process has it open.
- HTTP(S) DSN: the query goes to the ClickHouse server.

Every path runs the query with ClickHouse's `readonly=1` and returns the same
JSON-safe values (see `sinks.results`).
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from clickhouse_connect.driver.exceptions import ClickHouseError

from hookline.config import AuditConfig, HooklineConfig
from sinks.client import READ_ONLY_SETTINGS, open_client, read_only_query
from sinks.dsn import embedded_path, normalize_dsn, redact_dsn
from sinks.errors import DataFolderLockedError, QueryError
from sinks.statements import single_statement

CONNECT_TIMEOUT_SECONDS = 2.0
# The sink stops a query after max_execution_time; allow for the transfer.
RESPONSE_TIMEOUT_SECONDS = float(READ_ONLY_SETTINGS["max_execution_time"]) + 30.0

Rows = list[tuple[Any, ...]]


def run_query(config: HooklineConfig, sql: str) -> tuple[list[str], Rows]:
    """Run one read-only SQL statement on the audit log; return column names and rows.

    Raises:
        ConfigError: audit.dsn is invalid.
        QueryError: the SQL is invalid or not read-only (ClickHouse's message),
            the audit log cannot be reached, or its chDB data folder is locked
            by a process that does not serve queries.
    """
    single_statement(sql)
    dsn = normalize_dsn(config.audit.dsn)
    folder = embedded_path(dsn)
    if folder is None:
        return _query_directly(dsn, sql)

    result = _query_sink(config.audit, sql)
    if result is not None:
        return result
    if not folder.is_dir():
        raise QueryError(
            f"no audit log at {folder}: the folder does not exist; start the audit sink first"
        )
    try:
        return _query_directly(dsn, sql)
    except DataFolderLockedError as error:
        owner = f"process {error.owner_pid}" if error.owner_pid else "another process"
        raise QueryError(
            f"chDB data folder {folder} is locked by {owner}, and no audit sink listens on "
            f"{_sink_url(config.audit)}; stop that process or start the sink with this config"
        ) from None


def _query_directly(dsn: str, sql: str) -> tuple[list[str], Rows]:
    try:
        client = open_client(dsn, read_only=True)
    except ClickHouseError as error:
        raise QueryError(f"cannot open the audit log at {redact_dsn(dsn)}: {error}") from None

    try:
        return read_only_query(client, sql)
    except ClickHouseError as error:
        raise QueryError(str(error)) from None
    finally:
        client.close()


def _query_sink(audit: AuditConfig, sql: str) -> tuple[list[str], Rows] | None:
    """Send SQL to the sink's endpoint; return None when nothing listens there."""
    url = _sink_url(audit)
    timeout = httpx.Timeout(RESPONSE_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    # trust_env=False: a proxy from the environment must not see loopback queries.
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as http:
            response = http.post(url, content=sql.encode("utf-8"))
    except httpx.ConnectError:
        return None
    except httpx.TimeoutException:
        raise QueryError(
            f"the audit sink at {url} did not respond within {RESPONSE_TIMEOUT_SECONDS:.0f} s"
        ) from None
    except httpx.HTTPError as error:
        raise QueryError(f"request to the audit sink at {url} failed: {error}") from None

    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise QueryError(
            f"{url} responded {response.status_code} without JSON; "
            "is another program using audit.query_port?"
        ) from None
    if not isinstance(payload, dict):
        raise QueryError(f"{url} responded {response.status_code} with unexpected JSON")
    if response.status_code != 200:
        raise QueryError(str(payload.get("error", payload)))
    if "columns" not in payload or "rows" not in payload:
        raise QueryError(f"{url} responded without columns and rows")
    return list(payload["columns"]), [tuple(row) for row in payload["rows"]]


def _sink_url(audit: AuditConfig) -> str:
    host = f"[{audit.query_host}]" if ":" in audit.query_host else audit.query_host
    return f"http://{host}:{audit.query_port}/query"
