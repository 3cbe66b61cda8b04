"""Audit store DSNs: the embedded chDB form and the ClickHouse HTTP(S) form.

Accepted forms of `audit.dsn`:

- `chdb:///abs/path`: the embedded engine with its data folder at /abs/path;
- `chdb://rel/path` or `chdb:rel/path`: the same, with the folder relative to
  the current working directory;
- `http://[user[:password]@]host:port/database` and `https://...`: a ClickHouse
  server.

clickhouse-connect reads `chdb://rel/path` as the location `rel` and the
database `path`, so every DSN goes through `normalize_dsn` first.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hookline.errors import ConfigError

EMBEDDED_SCHEME = "chdb"
SERVER_SCHEMES = ("http", "https")
IN_MEMORY_LOCATIONS = ("memory", ":memory:")


def normalize_dsn(dsn: str, cwd: Path | None = None) -> str:
    """Return DSN in the form clickhouse-connect reads as intended.

    A chDB DSN becomes `chdb:///absolute/path` (relative paths resolved against
    CWD, default the current working directory), keeping any query string.
    HTTP(S) DSNs are returned unchanged.

    Raises:
        ConfigError: the scheme is unknown, the chDB path is missing, or the DSN
            names an in-memory engine, which would lose the audit log at exit.
    """
    parts = urlsplit(dsn.strip())
    scheme = parts.scheme.lower()
    if scheme in SERVER_SCHEMES:
        if not parts.hostname:
            raise ConfigError(f"audit.dsn {redact_dsn(dsn)!r} has no host; use http://host:8123/db")
        return dsn.strip()
    if scheme != EMBEDDED_SCHEME:
        raise ConfigError(
            f"audit.dsn {redact_dsn(dsn)!r} has an unknown scheme; use chdb:///abs/path, "
            "chdb://relative/path or http(s)://host:port/database"
        )

    location = parts.netloc + parts.path
    if location in IN_MEMORY_LOCATIONS:
        raise ConfigError(
            f"audit.dsn {dsn!r} names an in-memory engine, which loses the audit log at exit; "
            "use chdb:///abs/path or chdb://relative/path"
        )
    if not location:
        raise ConfigError(f"audit.dsn {dsn!r} has no data folder; use chdb:///abs/path")

    path = Path(location)
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    query = f"?{parts.query}" if parts.query else ""
    return f"{EMBEDDED_SCHEME}://{path}{query}"


def embedded_path(dsn: str) -> Path | None:
    """Return the data folder of a normalised chDB DSN, or None for a server DSN."""
    parts = urlsplit(dsn)
    if parts.scheme.lower() != EMBEDDED_SCHEME:
        return None
    return Path(parts.netloc + parts.path)


def redact_dsn(dsn: str) -> str:
    """Return DSN with its password replaced, for logs and error messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
