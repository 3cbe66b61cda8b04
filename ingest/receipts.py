"""The 200 response of a stored webhook: its receipt body, sent on a short path through Litestar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from litestar import Response
from litestar.enums import MediaType

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar import Litestar, Request
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures import Cookie
    from litestar.types import ASGIApp, Receive, Scope, Send, TypeEncodersMap


@dataclass(frozen=True)
class Receipt:
    """Body of a 200 response: the id under which the delivery was stored."""

    receipt_id: str


class ReceiptResponse(Response[Receipt]):
    """A 200 response with the `Receipt` of RECEIPT_ID as its JSON body.

    Litestar (2.25) turns a returned `Response` into an `ASGIResponse` by merging
    headers, choosing a serializer and filling a case-insensitive header map.
    For a receipt that cost about 11 µs of CPU per request in `bench.route_cost`
    on the 2-core benchmark machine. When the route adds no headers, cookies,
    background task or type encoders, this response sends the same ASGI
    messages directly. Otherwise it takes Litestar's path.
    """

    def __init__(self, receipt_id: str) -> None:
        super().__init__(Receipt(receipt_id), status_code=200)

    def to_asgi_response(  # type: ignore[override]
        self,
        app: Litestar | None,
        request: Request,
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIApp:
        """Return the ASGI application that sends this response."""
        if (
            headers
            or cookies
            or background is not None
            or encoded_headers is not None
            or is_head_response
            or type_encoders
            or (self.media_type or media_type or MediaType.JSON) != MediaType.JSON
            or self.headers
            or self.cookies
            or self.background is not None
            or self.response_type_encoders
        ):
            return super().to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
        return EncodedJSONResponse(self.status_code or 200, msgspec.json.encode(self.content))


class EncodedJSONResponse:
    """An ASGI application that sends STATUS with an encoded JSON BODY.

    The headers are those that Litestar's `ASGIResponse` sets for a JSON body
    without extra headers: content-type, then content-length.
    """

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_length = str(len(self.body)).encode("latin-1")
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    (b"content-type", MediaType.JSON.value.encode("latin-1")),
                    (b"content-length", content_length),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
