"""Rate-limited logging for messages that can repeat once per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _KeyState:
    logged_at: float
    suppressed: int = 0


class RateLimitedLogger:
    """Log at most one message per key every `interval_seconds`.

    Messages dropped in between are counted, and the count is appended to the
    next message logged for that key. Keys should come from a bounded set, such
    as (source, reason) pairs, because one entry is kept per key.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._keys: dict[Hashable, _KeyState] = {}

    def warning(self, key: Hashable, message: str, *args: object) -> bool:
        """Log MESSAGE % ARGS at warning level unless KEY was logged recently.

        Returns:
            True when the message was logged, False when it was suppressed.
        """
        now = self._clock()
        state = self._keys.get(key)
        if state is not None and now - state.logged_at < self.interval_seconds:
            state.suppressed += 1
            return False

        suppressed = state.suppressed if state is not None else 0
        self._keys[key] = _KeyState(logged_at=now)
        if suppressed:
            message = f"{message} (%d similar messages suppressed)"
            args = (*args, suppressed)
        self.logger.warning(message, *args)
        return True
