"""Exceptions of the audit sink and of read-only queries on the audit log.

HooklineError                     (hookline.errors)
├── DataFolderLockedError         another process has the chDB data folder open
└── QueryError                    a read-only query failed; the message gives the reason
"""

from __future__ import annotations

from pathlib import Path

from hookline.errors import HooklineError


class DataFolderLockedError(HooklineError):
    """Another process has the embedded ClickHouse data folder open.

    chDB lets one process open a data folder at a time. Retrying helps once
    the other process exits.
    """

    retriable = True

    def __init__(self, path: Path, owner_pid: int | None) -> None:
        owner = f"process {owner_pid}" if owner_pid is not None else "another process"
        super().__init__(
            f"chDB data folder {path} is locked by {owner}; stop that process, or send "
            "queries to the audit sink that owns the folder"
        )
        self.path = path
        self.owner_pid = owner_pid


class QueryError(HooklineError):
    """A read-only query on the audit log failed.

    The message carries ClickHouse's own error text for invalid SQL.
    """
