"""Exceptions raised by Hookline.

    HooklineError                 base of every Hookline exception
    ├── ConfigError               the configuration is invalid; fix it and restart
    ├── VerificationError         a request failed authentication (ingest: 401)
    ├── BrokerUnavailableError    Kafka did not acknowledge in time (retriable)
    └── AuditStoreError           ClickHouse rejected or could not take a batch

`retriable` says whether trying the same operation again later can succeed.
"""

from __future__ import annotations


class HooklineError(Exception):
    """Base class of Hookline's exceptions."""

    retriable = False


class ConfigError(HooklineError):
    """The configuration file or an environment variable it names is invalid."""


class VerificationError(HooklineError):
    """A webhook request failed authentication.

    `reason` is a short machine-readable code (for example
    `no_matching_signature`) that is safe to return to the sender because it
    reveals nothing about the secret.
    """

    def __init__(self, reason: str, detail: str, *, status: int = 401) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


class BrokerUnavailableError(HooklineError):
    """Kafka did not acknowledge a record within the configured bound."""

    retriable = True

    def __init__(self, topic: str, detail: str) -> None:
        super().__init__(f"record for topic {topic} was not acknowledged: {detail}")
        self.topic = topic


class AuditStoreError(HooklineError):
    """ClickHouse failed to store a batch of audit rows."""

    retriable = True

    def __init__(self, table: str, detail: str) -> None:
        super().__init__(f"insert into {table} failed: {detail}")
        self.table = table
