"""Test-only fault hook of the audit sink, off unless its environment variable is set.

`HOOKLINE_AUDIT_TEST_KILL_AFTER_INSERTS=N` makes the sink kill its own process
with SIGKILL right after its Nth successful insert and before the Kafka
commit, so tests can check that a restart leaves no row missing and none
twice. Production never sets the variable, and the sink logs a warning at
start when it is set.
"""

from __future__ import annotations

import logging
import os
import signal

from hookline.errors import ConfigError

logger = logging.getLogger(__name__)

KILL_AFTER_INSERTS_ENV = "HOOKLINE_AUDIT_TEST_KILL_AFTER_INSERTS"


class InsertKillSwitch:
    """Counts inserts and kills the process at the count set in the environment."""

    def __init__(self) -> None:
        self.limit = _read_limit()
        self._inserts = 0
        if self.limit:
            logger.warning(
                "%s=%d is set: this process kills itself after insert %d (test-only)",
                KILL_AFTER_INSERTS_ENV,
                self.limit,
                self.limit,
            )

    def insert_done(self) -> None:
        """Count one successful insert; send SIGKILL to this process at the limit."""
        self._inserts += 1
        if self.limit and self._inserts >= self.limit:
            logger.warning("%s reached: killing this process (test-only)", KILL_AFTER_INSERTS_ENV)
            os.kill(os.getpid(), signal.SIGKILL)


def _read_limit() -> int:
    value = os.environ.get(KILL_AFTER_INSERTS_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{KILL_AFTER_INSERTS_ENV}={value!r} is invalid; use a positive integer")
    return int(value)
