"""One webhook request on its way through the receiver: source, headers, client, receive time."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from litestar import Request

from hookline.config import SourceConfig
from hookline.records import CREDENTIAL_HEADERS, REDACTED, Delivery, new_receipt_id
from ingest.locators import EventLocator


def read_headers(request: Request) -> tuple[dict[str, str], list[str]]:
    """Return the request's headers with lower-case names, and the names that repeat.

    A repeated header's values are joined with ", " in the order sent. The list
    has a name once for every copy after its first, in the order of those copies.
    """
    # Raw ASGI headers keep repeats and the order they were sent in. Latin-1
    # maps every byte to one character, so no header value fails to decode.
    headers: dict[str, str] = {}
    repeats: list[str] = []
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in headers:
            headers[name] = f"{headers[name]}, {value}"
            repeats.append(name)
        else:
            headers[name] = value
    return headers, repeats


def repeated_header(repeats: Sequence[str], names: Collection[str]) -> str | None:
    """Return the first name in REPEATS (as `read_headers` lists them) that is in NAMES."""
    for name in repeats:
        if name in names:
            return name
    return None


@dataclass
class RequestState:
    """State of one request in the pipeline: its source, headers, client and receive time."""

    source: SourceConfig
    received_at: datetime
    # Lower-case names, repeated values joined, as `read_headers` returns them.
    headers: dict[str, str]
    remote_addr: str
    # Names of the copies after the first of each repeated header, in request order.
    repeats: list[str] = field(default_factory=list)
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
        """Return the request headers for the record, with every credential header redacted.

        The result equals `hookline.records.audited_headers` of the raw headers
        with the source's credential headers then set to one `REDACTED` each.
        So a repeated header of `CREDENTIAL_HEADERS` keeps one `REDACTED` per copy.
        """
        headers = dict(self.headers)
        for name in CREDENTIAL_HEADERS & headers.keys():
            headers[name] = ", ".join([REDACTED] * (1 + self.repeats.count(name)))
        for name in self.credential_headers & headers.keys():
            headers[name] = REDACTED
        return headers
