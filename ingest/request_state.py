"""One webhook request on its way through the receiver: source, headers, client, receive time."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from litestar import Request

from hookline.config import SourceConfig
from hookline.records import REDACTED, Delivery, audited_headers, new_receipt_id
from ingest.locators import EventLocator


def request_headers(request: Request) -> list[tuple[str, str]]:
    """Return the request's headers as (name, value) text pairs, repeats included, in order."""
    # Raw ASGI headers keep repeats and the order they were sent in. Latin-1
    # maps every byte to one character, so no header value fails to decode.
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in request.scope["headers"]
    ]


def lower_case_headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Return PAIRS as a dict with lower-case names, repeated values joined with ", "."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def repeated_header(pairs: list[tuple[str, str]], names: Collection[str]) -> str | None:
    """Return the first of NAMES (lower-case) that occurs more than once in PAIRS, or None."""
    seen: set[str] = set()
    for name, _ in pairs:
        lowered = name.lower()
        if lowered not in names:
            continue
        if lowered in seen:
            return lowered
        seen.add(lowered)
    return None


@dataclass
class RequestState:
    """State of one request in the pipeline: its source, headers, client and receive time."""

    source: SourceConfig
    received_at: datetime
    raw_headers: list[tuple[str, str]]
    headers: dict[str, str]
    remote_addr: str
    # Headers redacted in the record besides `hookline.records.CREDENTIAL_HEADERS`.
    credential_headers: frozenset[str] = field(default_factory=frozenset)

    def delivery(
        self, body: bytes, *, status: int | None = None, reason: str | None = None
    ) -> Delivery:
        """Return the Delivery that records this request with BODY."""
        locator = EventLocator(self.headers, body)
        return Delivery(
            receipt_id=new_receipt_id(),
            source=self.source.name,
            received_at=self.received_at,
            body=body,
            content_type=self.headers.get("content-type", ""),
            event_id=locator.find(self.source.event_id),
            event_type=locator.find(self.source.event_type),
            entity_key=locator.find(self.source.entity_key),
            remote_addr=self.remote_addr,
            request_headers=self.audited_headers(),
            status=status,
            reason=reason,
        )

    def audited_headers(self) -> dict[str, str]:
        """Return the request headers for the record, with every credential header redacted."""
        headers = audited_headers(self.raw_headers)
        for name in self.credential_headers & headers.keys():
            headers[name] = REDACTED
        return headers
