"""Per-source request rate limits: a token bucket for each source that sets one.

NOTE: each ingest process keeps its own buckets. With N replicas behind a
load balancer a source can send up to N times its configured rate in total.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from hookline.config import SourceConfig


class TokenBucket:
    """A bucket of `burst` tokens that refills at `rate_per_second`. Each request takes one.

    Args:
        rate_per_second: Tokens added per second, the sustained request rate.
        burst: Capacity of the bucket, the requests allowed at once after a pause.
        clock: Monotonic time in seconds.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError(
                f"rate {rate_per_second}/s with burst {burst} is invalid; "
                "use a positive rate and a burst of at least 1"
            )
        self.rate_per_second = float(rate_per_second)
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take(self) -> float:
        """Take one token.

        Returns:
            0.0 when a token was taken, else the seconds until one is available.
        """
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_second)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate_per_second


def source_bucket(source: SourceConfig) -> TokenBucket | None:
    """Return the token bucket of SOURCE, or None when it sets no rate limit.

    The burst defaults to one second's worth of requests, at least 1.
    """
    rate = source.rate_limit_per_second
    if rate is None:
        return None
    burst = source.rate_limit_burst or max(1, math.ceil(rate))
    return TokenBucket(rate, burst)


def retry_after_seconds(wait_seconds: float) -> int:
    """Return the Retry-After value for WAIT_SECONDS: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait_seconds))
