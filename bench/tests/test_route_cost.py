"""Tests of bench.route_cost: every timed request passes through the whole application."""

from __future__ import annotations

import asyncio

import pytest

from bench.receiver_cost import StoredRequest
from bench.route_cost import PATH, http_scope, measure
from bench.signed_requests import StripeRequests


def test_http_scope_posts_to_webhook_path():
    raw = StripeRequests("whsec_test", "127.0.0.1:8000", PATH).build()[1]

    scope = http_scope(StoredRequest(raw))

    assert scope["method"] == "POST"
    assert scope["path"] == PATH
    assert b"stripe-signature" in [name for name, _ in scope["headers"]]


@pytest.mark.parametrize("app", ["bare", "hookline"])
def test_route_cost_one_value_per_pass(app):
    results = asyncio.run(measure(app, requests=50, passes=2))

    assert len(results) == 2
    assert all(value > 0 for value in results)
