"""Deciding what the router produces for one `webhooks.raw` record.

`Router.process` is the whole per-record decision, free of Kafka and Faust so
that unit tests can drive it with a dict as the deduplication table:

0. Sweep the deduplication table partition of the record if a sweep is due.
1. Read the `hookline-*` headers. A record whose receipt id, source or receive
   time is missing or malformed cannot be interpreted, so it goes to the
   dead-letter topic unchanged, plus a `hookline_dlq_reason` header.
2. Drop the record when it repeats a (source, provider event id) seen within
   the deduplication window.
3. A record without an event type goes to the unrouted topic unchanged.
4. Otherwise it goes to every topic of the matching rules (or the source's
   default topic) as a CloudEvent; see `streams.envelope`.

The returned records start with the table changes of steps 0 and 2, addressed
to the table's changelog topic and partition, so the caller produces them in
the same transaction as the rest.

The router routes on the headers ingest wrote and never parses the body. When
ingest cannot parse a JSON body, the record has no event type (and usually no
event id), so step 3 sends it to the unrouted topic, next to other events of
unknown type. The dead-letter topic is kept for records that the router
cannot read at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from streams.dedupe import Deduplicator
from streams.envelope import (
    InvalidRecordError,
    OutboundRecord,
    cloudevent_headers,
    dead_letter_record,
    parse_raw_record,
)
from streams.rules import RoutingRules

logger = logging.getLogger(__name__)

# Dead-letter warnings are logged at most once per this many seconds, with a
# count of the records dead-lettered in between.
WARNING_INTERVAL_SECONDS = 10.0


@dataclass
class RouterCounts:
    """Records processed since the router started, by outcome."""

    routed: int = 0
    repeats: int = 0
    unrouted: int = 0
    dead_lettered: int = 0


@dataclass
class _RateLimitedWarning:
    interval: float
    last_logged: float = field(default=-float("inf"))
    suppressed: int = 0

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last_logged < self.interval:
            self.suppressed += 1
            return
        if self.suppressed:
            message += " (%d more dead-lettered since the last warning)"
            args = (*args, self.suppressed)
        logger.warning(message, *args)
        self.last_logged = now
        self.suppressed = 0


class Router:
    """Turns each raw record into the records to produce: routed, unrouted or dead-lettered."""

    def __init__(
        self,
        rules: RoutingRules,
        deduplicator: Deduplicator,
        dead_letter_topic: str,
        changelog_topic: str,
    ) -> None:
        self.rules = rules
        self.deduplicator = deduplicator
        self.dead_letter_topic = dead_letter_topic
        self.changelog_topic = changelog_topic
        self.counts = RouterCounts()
        self._dead_letter_warning = _RateLimitedWarning(WARNING_INTERVAL_SECONDS)

    def process(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        partition: int,
    ) -> list[OutboundRecord]:
        """Return the records to produce for one raw record read from PARTITION.

        A repeat gives no routed record. Table changes come first in the list.
        """
        self.deduplicator.maybe_sweep(partition)
        outbound = self._decide(key, value, headers, partition)
        changes = self.table_changes()
        if not changes:
            return outbound
        changes.extend(outbound)
        return changes

    def table_changes(self) -> list[OutboundRecord]:
        """Return the pending deduplication table changes as changelog records."""
        return [
            OutboundRecord(self.changelog_topic, change.key, change.value, [], change.partition)
            for change in self.deduplicator.take_changes()
        ]

    def _decide(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        partition: int,
    ) -> list[OutboundRecord]:
        try:
            event = parse_raw_record(key, value, headers)
        except InvalidRecordError as error:
            return [self.dead_letter(key, value, headers, error.reason)]

        if self.deduplicator.is_repeat(event, partition):
            self.counts.repeats += 1
            if logger.isEnabledFor(logging.DEBUG):
                first = self.deduplicator.first_delivery(event)
                logger.debug(
                    "Dropped repeat of %s event %s (receipt %s, received %.6f, partition %d); "
                    "first delivery received %.6f on partition %d",
                    event.source,
                    event.event_id,
                    event.receipt_id,
                    event.received_at.timestamp(),
                    partition,
                    first.first_received if first else float("nan"),
                    first.partition if first else -1,
                )
            return []

        if not event.event_type:
            self.counts.unrouted += 1
            copied = [(name, raw or b"") for name, raw in headers]
            return [OutboundRecord(self.rules.unrouted_topic, key, value, copied)]

        self.counts.routed += 1
        ce_headers = cloudevent_headers(event)
        routed_key = event.routed_key
        return [
            OutboundRecord(topic, routed_key, event.value, ce_headers)
            for topic in self.rules.topics_for(event.source, event.event_type)
        ]

    def dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        reason: str,
    ) -> OutboundRecord:
        """Return the dead-letter record for a raw record that cannot be routed."""
        self.counts.dead_lettered += 1
        self._dead_letter_warning.warn("Dead-lettered a raw record: %s", reason)
        return dead_letter_record(self.dead_letter_topic, key, value, headers, reason)
