"""Unit tests of the receipt response: its short path sends what Litestar's path sends."""

from __future__ import annotations

from typing import Any

from litestar import Response
from litestar.response.base import ASGIResponse

from ingest.receipts import EncodedJSONResponse, Receipt, ReceiptResponse

RECEIPT_ID = "01900000-0000-7000-8000-000000000000"


async def _messages(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    await app({"type": "http"}, receive, send)
    return sent


async def test_receipt_response_matches_litestar():
    # The arguments that Litestar 2.25 passes for a route without headers, cookies or media type.
    arguments: dict[str, Any] = {
        "background": None,
        "cookies": [],
        "headers": {},
        "media_type": "",
        "status_code": 200,
        "type_encoders": {},
    }
    litestar_app = Response(Receipt(RECEIPT_ID), status_code=200).to_asgi_response(
        None, None, **arguments
    )

    short_app = ReceiptResponse(RECEIPT_ID).to_asgi_response(None, None, **arguments)

    assert isinstance(short_app, EncodedJSONResponse)
    assert await _messages(short_app) == await _messages(litestar_app)


async def test_receipt_response_route_headers_take_litestar_path():
    response = ReceiptResponse(RECEIPT_ID)

    app = response.to_asgi_response(None, None, headers={"X-Extra": "1"})

    assert isinstance(app, ASGIResponse)
    start = (await _messages(app))[0]
    assert (b"x-extra", b"1") in start["headers"]


async def test_receipt_response_own_headers_take_litestar_path():
    response = ReceiptResponse(RECEIPT_ID)
    response.set_header("Retry-After", "1")

    app = response.to_asgi_response(None, None)

    assert isinstance(app, ASGIResponse)


def test_receipt_response_content():
    response = ReceiptResponse(RECEIPT_ID)

    assert response.status_code == 200
    assert response.content == Receipt(RECEIPT_ID)
