"""Unit tests of bench.signed_requests: signed raw requests and their file."""

import time

import orjson
import pytest

from bench.signed_requests import (
    StripeRequests,
    read_requests,
    sign_requests,
    write_requests,
)
from hookline.config import SourceConfig
from hookline.errors import VerificationError
from ingest.schemes import create_verifier

SECRET = "whsec_bench_test_secret"


def _verifier():
    source = SourceConfig(name="stripe", scheme="stripe", secrets=(SECRET,), tolerance_seconds=300)
    return create_verifier(source)


def _parse(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def test_request_has_line_host_and_length():
    _, raw = StripeRequests(SECRET, "127.0.0.1:8000", "/webhooks/stripe").build()
    request_line, headers, body = _parse(raw)
    assert request_line == "POST /webhooks/stripe HTTP/1.1"
    assert headers["host"] == "127.0.0.1:8000"
    assert int(headers["content-length"]) == len(body)


def test_request_verifies_with_stripe_scheme():
    event_id, raw = StripeRequests(SECRET, "127.0.0.1:8000", "/webhooks/stripe").build()
    _, headers, body = _parse(raw)
    assert orjson.loads(body)["id"] == event_id
    _verifier().verify(headers, body, now=time.time())


def test_request_body_is_stripe_sized():
    _, raw = StripeRequests(SECRET, "h:1", "/p").build()
    _, _, body = _parse(raw)
    assert 900 <= len(body) <= 1500
    assert orjson.loads(body)["type"] == "payment_intent.succeeded"


def test_request_with_other_secret_fails():
    _, raw = StripeRequests("whsec_other", "h:1", "/p").build()
    _, headers, body = _parse(raw)
    with pytest.raises(VerificationError):
        _verifier().verify(headers, body, now=time.time())


def test_signed_requests_are_distinct():
    requests = sign_requests(SECRET, 200, host="h:1", path="/p")
    assert len(set(requests)) == 200
    event_ids = {orjson.loads(_parse(raw)[2])["id"] for raw in requests}
    assert len(event_ids) == 200


def test_signed_requests_use_given_timestamp():
    now = int(time.time()) - 100
    raw = sign_requests(SECRET, 1, host="h:1", path="/p", now=now)[0]
    _, headers, _ = _parse(raw)
    assert headers["stripe-signature"].startswith(f"t={now},v1=")


def test_sign_requests_rejects_zero():
    with pytest.raises(ValueError, match="count=0"):
        sign_requests(SECRET, 0, host="h:1", path="/p")


def test_requests_file_round_trips(tmp_path):
    requests = sign_requests(SECRET, 3, host="h:1", path="/p")
    path = write_requests(requests, tmp_path / "requests.bin")
    assert read_requests(path) == requests


def test_requests_file_rejects_nul(tmp_path):
    with pytest.raises(ValueError, match="NUL byte"):
        write_requests([b"GET / HTTP/1.1\r\n\0"], tmp_path / "requests.bin")


def test_signed_requests_vary_entity_id():
    requests = sign_requests(SECRET, 50, host="h:1", path="/p")
    object_ids = {orjson.loads(_parse(raw)[2])["data"]["object"]["id"] for raw in requests}
    assert len(object_ids) == 50
