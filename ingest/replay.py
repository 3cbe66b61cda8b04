"""Replay detection at the ingress: identical copies of a verified request are rejected.

A request is identified by what its signature covers: the source, the signed
values besides the body (timestamp text, message id, see
`ingest.schemes.base.ReplayIdentity`) and the body. Two requests with the same
identity carry the same signature, so the second is a copy. A provider's retry
signs a new timestamp and is a new identity, which ingest accepts and the router
deduplicates by event id. Rewriting the signature header of a captured request
(reordering entries, adding bogus ones) does not change the identity, because
the header text is not part of it.

The window is `replay_window_seconds` per source. By default it is the
scheme's `tolerance_seconds` for schemes that sign a timestamp, because an
older copy already fails the timestamp check, and 0 (off) for schemes that
sign only the body: GitHub, for one, redelivers with the same signature.

NOTE: the cache belongs to one ingest process. With several replicas behind
a load balancer, a copy that reaches another replica passes, so such
deployments need a cache shared by all replicas.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections import OrderedDict
from collections.abc import Hashable

from hookline.config import SourceConfig
from ingest.ratelimit import RateLimitedLogger
from ingest.schemes.base import ReplayIdentity, Verifier

logger = logging.getLogger(__name__)


class ReplayCache:
    """Keys seen recently, each kept until its expiry time, at most `max_entries` of them.

    When full, adding a key evicts the key that expires first, so a copy of an
    evicted request is no longer detected. The eviction is logged.
    """

    def __init__(self, max_entries: int, name: str = "replay cache") -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries = {max_entries} is invalid; use a positive number")
        self.max_entries = max_entries
        self.name = name
        self._expiry: dict[Hashable, float] = {}
        # Min-heap of (expiry, key). An entry whose expiry no longer equals
        # `_expiry[key]` was discarded or replaced, and is skipped when popped.
        self._by_expiry: list[tuple[float, Hashable]] = []
        self._eviction_log = RateLimitedLogger(logger, interval_seconds=60.0)

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, key: object) -> bool:
        return key in self._expiry

    def add(self, key: Hashable, expires_at: float, now: float) -> bool:
        """Record KEY until EXPIRES_AT (Unix seconds).

        Returns:
            False when KEY is already recorded and not expired at NOW, else True.
        """
        self._remove_expired(now)
        if key in self._expiry:
            return False

        while len(self._expiry) >= self.max_entries:
            self._evict_first()
        self._expiry[key] = expires_at
        heapq.heappush(self._by_expiry, (expires_at, key))
        if len(self._by_expiry) > 2 * self.max_entries:
            self._compact()
        return True

    def discard(self, key: Hashable) -> None:
        """Forget KEY, so that the next request with it is accepted."""
        self._expiry.pop(key, None)

    def _remove_expired(self, now: float) -> None:
        while self._by_expiry and self._by_expiry[0][0] < now:
            expires_at, key = heapq.heappop(self._by_expiry)
            if self._expiry.get(key) == expires_at:
                del self._expiry[key]

    def _evict_first(self) -> None:
        expires_at, key = heapq.heappop(self._by_expiry)
        if self._expiry.get(key) != expires_at:
            return
        del self._expiry[key]
        self._eviction_log.warning(
            "evict",
            "%s is full at %d entries; evicting entries before they expire",
            self.name,
            self.max_entries,
        )

    def _compact(self) -> None:
        # Discarded keys leave stale heap entries behind; rebuild from the live ones.
        self._by_expiry = [(expires_at, key) for key, expires_at in self._expiry.items()]
        heapq.heapify(self._by_expiry)


def replay_key(source: str, identity: ReplayIdentity, body: bytes) -> bytes:
    """Return the SHA-256 digest that identifies a verified request of SOURCE."""
    digest = hashlib.sha256()
    for part in (source.encode(), identity.material):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    digest.update(body)
    return digest.digest()


def replay_window_seconds(source: SourceConfig, verifier: Verifier) -> int:
    """Return the replay window of SOURCE in seconds, 0 when replay detection is off."""
    if source.replay_window_seconds is not None:
        return source.replay_window_seconds
    if verifier.signs_timestamp and verifier.tolerance_seconds:
        return verifier.tolerance_seconds
    return 0


class ReplayGuard:
    """Replay detection for one source.

    Args:
        source: The source name, part of every key.
        window_seconds: How long a request is remembered, 0 for never.
        max_entries: Size bound of the cache.
    """

    def __init__(self, source: str, window_seconds: int, max_entries: int) -> None:
        self.source = source
        self.window_seconds = window_seconds
        self.cache = ReplayCache(max_entries, name=f"replay cache of source {source}")
        # Receipt ids of requests the broker acknowledged, oldest first, so that a
        # replay gets the receipt of the stored original.
        self._receipts: OrderedDict[bytes, str] = OrderedDict()
        self._max_receipts = max_entries

    @property
    def enabled(self) -> bool:
        """Whether this source checks for replays at all."""
        return self.window_seconds > 0

    def admit(self, identity: ReplayIdentity, body: bytes, now: float) -> bytes | None:
        """Record a verified request and return its key, or None when it is a replay.

        The request is remembered until `window_seconds` after the later of
        NOW and its signed timestamp. A request signed ahead of the clock stays
        valid until its timestamp plus the tolerance, so counting from the
        timestamp keeps it remembered for as long as it could pass.
        """
        key = replay_key(self.source, identity, body)
        start = max(now, identity.timestamp) if identity.timestamp is not None else now
        if not self.cache.add(key, start + self.window_seconds, now):
            return None
        return key

    def forget(self, key: bytes) -> None:
        """Forget KEY after its request could not be stored, so the provider's retry passes."""
        self.cache.discard(key)
        self._receipts.pop(key, None)

    def remember_receipt(self, key: bytes, receipt_id: str) -> None:
        """Record that the request with KEY was stored under RECEIPT_ID."""
        self._receipts[key] = receipt_id
        while len(self._receipts) > self._max_receipts:
            self._receipts.popitem(last=False)

    def stored_receipt(self, identity: ReplayIdentity, body: bytes) -> str | None:
        """Return the receipt id of a stored original of this request, or None.

        None while the original is still waiting for the broker, or after it
        left the window: only a durable original makes a copy safe to accept.
        """
        key = replay_key(self.source, identity, body)
        if key not in self.cache:
            return None
        return self._receipts.get(key)
