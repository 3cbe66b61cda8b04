"""Tests of bench.receiver_cost: every timed request passes the whole pipeline."""

from __future__ import annotations

import asyncio

from bench.receiver_cost import StoredRequest, measure
from bench.signed_requests import StripeRequests


def test_stored_request_headers_and_body():
    raw = StripeRequests("whsec_test", "127.0.0.1:8000", "/webhooks/stripe").build()[1]

    request = StoredRequest(raw)
    message = asyncio.run(request.receive())

    names = [name for name, _ in request.scope["headers"]]
    assert b"stripe-signature" in names
    assert b"content-length" in names
    assert message["body"].startswith(b"{")
    assert message["more_body"] is False


def test_measure_returns_one_value_per_pass():
    results = asyncio.run(measure(requests=50, passes=2))

    assert len(results) == 2
    assert all(value > 0 for value in results)
