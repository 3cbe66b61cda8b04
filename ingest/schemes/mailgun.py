"""Mailgun: HMAC-SHA256 over timestamp + token, carried inside the JSON body.

The body is `{"signature": {"timestamp", "token", "signature"}, "event-data":
{...}}`. The signature is hex HMAC-SHA256 with the webhook signing key over
the timestamp text followed by the token, with no separator. The rest of the
body is not signed, so this is the one scheme that parses the body before
the signature is known to be good, and a captured signature block could be
sent again with other event data. Two checks limit that: the timestamp must
be within `tolerance_seconds` (default 900, since Mailgun warns that its
deliveries can be delayed) and a token already seen within that window is
rejected as a replay.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from hookline.errors import ConfigError, VerificationError
from ingest.ratelimit import RateLimitedLogger
from ingest.schemes.base import (
    NO_MATCHING_SIGNATURE,
    ReplayIdentity,
    Verifier,
    check_tolerance,
    matches_any,
    signature_bytes,
)

logger = logging.getLogger(__name__)

MALFORMED_BODY = "malformed_body"
MISSING_SIGNATURE = "missing_signature"
MALFORMED_SIGNATURE = "malformed_signature"
REPLAYED_TOKEN = "replayed_token"

DEFAULT_REPLAY_CACHE_SIZE = 100_000
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class ReplayCache:
    """Tokens seen recently, each kept until its expiry time, in memory.

    When `max_tokens` tokens are held, adding one evicts the token that
    expires first, so a replay of an evicted token is no longer detected.

    NOTE: the cache belongs to one ingest process. With several replicas
    behind a load balancer, a replay that reaches another replica passes, so
    such deployments need a cache shared by all replicas.
    """

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._expiry: dict[str, float] = {}
        # Min-heap of (expiry, token) with exactly one entry per cached token.
        self._by_expiry: list[tuple[float, str]] = []
        self._eviction_log = RateLimitedLogger(logger, interval_seconds=60.0)

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, token: object) -> bool:
        return token in self._expiry

    def add(self, token: str, expires_at: float, now: float) -> bool:
        """Record TOKEN until EXPIRES_AT (Unix seconds).

        Returns:
            False when TOKEN is already recorded and not expired at NOW, else True.
        """
        self._remove_expired(now)
        if token in self._expiry:
            return False

        if len(self._expiry) >= self.max_tokens:
            _, evicted = heapq.heappop(self._by_expiry)
            del self._expiry[evicted]
            self._eviction_log.warning(
                "evict",
                "mailgun replay cache is full at %d tokens; evicting tokens before they expire",
                self.max_tokens,
            )
        self._expiry[token] = expires_at
        heapq.heappush(self._by_expiry, (expires_at, token))
        return True

    def _remove_expired(self, now: float) -> None:
        while self._by_expiry and self._by_expiry[0][0] < now:
            _, token = heapq.heappop(self._by_expiry)
            del self._expiry[token]


def parse_signature_block(body: bytes) -> tuple[str, str, str]:
    """Return the timestamp text, token and signature from a Mailgun JSON body.

    A numeric timestamp is accepted and turned into its decimal text.

    Raises:
        VerificationError: `malformed_body` when BODY is not a JSON object,
            `missing_signature` when it has no `signature` object, and
            `malformed_signature` when a field is missing or of the wrong type.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise VerificationError(MALFORMED_BODY, "body must be a JSON object")

    block = document.get("signature")
    if not isinstance(block, dict):
        raise VerificationError(MISSING_SIGNATURE, "body has no signature object")

    timestamp = block.get("timestamp")
    if type(timestamp) is int and timestamp >= 0:
        timestamp = str(timestamp)
    token = block.get("token")
    signature = block.get("signature")
    if not isinstance(timestamp, str) or not _UNIX_SECONDS.fullmatch(timestamp):
        raise VerificationError(MALFORMED_SIGNATURE, "signature.timestamp must be Unix seconds")
    if not isinstance(token, str) or not token:
        raise VerificationError(MALFORMED_SIGNATURE, "signature.token must be a non-empty string")
    if not isinstance(signature, str):
        raise VerificationError(MALFORMED_SIGNATURE, "signature.signature must be a string")
    return timestamp, token, signature


def mailgun_signature(key: bytes, timestamp: str, token: str) -> bytes:
    """Return the hex HMAC-SHA256 that Mailgun sends for TIMESTAMP and TOKEN."""
    return hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest().encode()


def _replay_cache_size(options: Mapping[str, Any]) -> int:
    size = options.get("replay_cache_size", DEFAULT_REPLAY_CACHE_SIZE)
    if type(size) is not int or size <= 0:
        raise ConfigError(f"replay_cache_size = {size!r} is invalid; use a positive whole number")
    return size


class MailgunVerifier(Verifier):
    """Verify the signature block of Mailgun's JSON webhooks and reject replays.

    Options:
        replay_cache_size: Maximum number of tokens remembered, default 100000.
    """

    name = "mailgun"
    option_names = frozenset({"replay_cache_size"})
    default_tolerance_seconds = 900
    signs_timestamp = True

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        self.replay_cache = ReplayCache(_replay_cache_size(self.options))

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        timestamp_text, token, signature = parse_signature_block(body)

        expected = [mailgun_signature(key, timestamp_text, token) for key in self.keys]
        if not matches_any(expected, [signature_bytes(signature.strip())]):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, "signature.signature does not match a signing key"
            )

        timestamp = int(timestamp_text)
        check_tolerance(timestamp, now, self.tolerance_seconds)

        # NOTE: the token is recorded before the record reaches Kafka. If a
        # delivery got a 503 and the provider retried it with the same token,
        # the retry would be rejected here, so this relies on each delivery
        # attempt carrying a new token and timestamp.
        window = self.tolerance_seconds or 0
        if not self.replay_cache.add(token, timestamp + window, now):
            raise VerificationError(
                REPLAYED_TOKEN, "signature.token was already used within the tolerance window"
            )

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        # Timestamp and token are inside the body, so the body alone identifies the request.
        timestamp_text, _, _ = parse_signature_block(body)
        return ReplayIdentity(timestamp=int(timestamp_text))
