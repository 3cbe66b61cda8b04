"""Record formats on Hookline's Kafka topics.

`webhooks.raw` carries one record per accepted delivery:

- value: the request body exactly as received (after undoing any
  Content-Encoding), never re-serialised;
- key: `<source>:<entity key>` when the source config locates the entity an
  event is about (for example a Stripe subscription id), else
  `<source>:<provider event id>`, else `<source>:<receipt id>`. Either way all
  deliveries of one event land on one partition, which the router's
  deduplication needs, and an entity's events keep their order;
- headers (UTF-8 values): `hookline-receipt-id`, `hookline-source`,
  `hookline-received-at` (RFC 3339, UTC, microseconds), `hookline-content-type`,
  `hookline-event-id`, `hookline-event-type` and `hookline-entity-key` when known,
  `hookline-remote-addr`, and `hookline-request-headers`, a JSON object of the
  request headers with credentials removed.

`webhooks.rejected` carries one record per rejected request, with the same
headers plus `hookline-status` and `hookline-reason`, and the body truncated to
the configured maximum.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

RECEIPT_ID = "hookline-receipt-id"
SOURCE = "hookline-source"
RECEIVED_AT = "hookline-received-at"
CONTENT_TYPE = "hookline-content-type"
EVENT_ID = "hookline-event-id"
EVENT_TYPE = "hookline-event-type"
ENTITY_KEY = "hookline-entity-key"
REMOTE_ADDR = "hookline-remote-addr"
REQUEST_HEADERS = "hookline-request-headers"
STATUS = "hookline-status"
REASON = "hookline-reason"
BODY_LENGTH = "hookline-body-length"

# Request headers that carry credentials or signatures. Their names are kept
# in the audit log with the value replaced, so an auditor can see that a
# signature was present without learning it.
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-gitlab-token",
        "stripe-signature",
        "x-hub-signature",
        "x-hub-signature-256",
        "webhook-signature",
        "svix-signature",
        "x-shopify-hmac-sha256",
        "x-slack-signature",
        "x-twilio-signature",
        "paddle-signature",
        "x-square-hmacsha256-signature",
        "x-signature-ed25519",
        "x-twilio-email-event-webhook-signature",
        "x-zm-signature",
        "linear-signature",
        "typeform-signature",
    }
)
REDACTED = "[redacted]"


def new_receipt_id() -> str:
    """Return a new receipt id: a UUID whose first 48 bits are the Unix time in ms.

    The layout follows UUIDv7 (RFC 9562), so ids sort by receive time. The
    other 74 bits that are not version or variant come from `os.urandom`.
    """
    value = (time.time_ns() // 1_000_000 << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def format_time(moment: datetime) -> str:
    """Format MOMENT as RFC 3339 in UTC with microseconds and a `Z` suffix."""
    # isoformat is faster than strftime, and this runs for every record.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return f"{moment.isoformat(timespec='microseconds')[:-6]}Z"


def parse_time(text: str) -> datetime:
    """Parse a timestamp written by `format_time`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def audited_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Return the request headers with lower-case names and credentials redacted.

    Repeated headers are joined with ", " as HTTP allows.
    """
    result: dict[str, str] = {}
    for name, value in headers:
        name = name.lower()
        if name in CREDENTIAL_HEADERS:
            value = REDACTED
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


@dataclass(frozen=True)
class Delivery:
    """One webhook request as recorded on `webhooks.raw` or `webhooks.rejected`."""

    receipt_id: str
    source: str
    received_at: datetime
    body: bytes
    content_type: str = ""
    event_id: str | None = None
    event_type: str | None = None
    entity_key: str | None = None
    remote_addr: str = ""
    request_headers: Mapping[str, str] = field(default_factory=dict)
    status: int | None = None
    reason: str | None = None

    @property
    def key(self) -> bytes:
        """Kafka record key: source plus entity key, provider event id or receipt id."""
        return f"{self.source}:{self.entity_key or self.event_id or self.receipt_id}".encode()

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """Return the Kafka record headers that describe this delivery."""
        headers = [
            (RECEIPT_ID, self.receipt_id.encode()),
            (SOURCE, self.source.encode()),
            (RECEIVED_AT, format_time(self.received_at).encode()),
            (CONTENT_TYPE, self.content_type.encode()),
            (REMOTE_ADDR, self.remote_addr.encode()),
            (REQUEST_HEADERS, orjson.dumps(dict(self.request_headers))),
        ]
        if self.event_id is not None:
            headers.append((EVENT_ID, self.event_id.encode()))
        if self.event_type is not None:
            headers.append((EVENT_TYPE, self.event_type.encode()))
        if self.entity_key is not None:
            headers.append((ENTITY_KEY, self.entity_key.encode()))
        if self.status is not None:
            headers.append((STATUS, str(self.status).encode()))
        if self.reason is not None:
            headers.append((REASON, self.reason.encode()))
        return headers

    @classmethod
    def from_kafka(cls, value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> Delivery:
        """Rebuild a Delivery from a record's value and headers.

        Raises KeyError when the receipt id, source or receive time is missing
        and ValueError when one of them is malformed.
        """
        found = {name: raw.decode("utf-8", "replace") for name, raw in headers}
        status = found.get(STATUS)
        return cls(
            receipt_id=found[RECEIPT_ID],
            source=found[SOURCE],
            received_at=parse_time(found[RECEIVED_AT]),
            body=value or b"",
            content_type=found.get(CONTENT_TYPE, ""),
            event_id=found.get(EVENT_ID),
            event_type=found.get(EVENT_TYPE),
            entity_key=found.get(ENTITY_KEY),
            remote_addr=found.get(REMOTE_ADDR, ""),
            request_headers=orjson.loads(found.get(REQUEST_HEADERS, "{}")),
            status=int(status) if status is not None else None,
            reason=found.get(REASON),
        )
