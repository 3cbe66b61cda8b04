"""Tests of the baseline servers: the bare Litestar app and the Express receiver."""

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from bench.apps import create_bare_app
from bench.signed_requests import StripeRequests
from hookline.broker import find_free_ports

EXPRESS_DIR = Path(__file__).resolve().parents[1] / "express"
SECRET = "whsec_bench_test_secret"


def _signed(secret, now=None):
    """Return headers and body of a signed request, for httpx."""
    _, raw = StripeRequests(secret, "127.0.0.1", "/webhooks/stripe").build(now)
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode().split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() not in ("host", "content-length"):
            headers[name] = value.strip()
    return headers, body


def test_bare_app_reads_body():
    with TestClient(app=create_bare_app()) as client:
        response = client.post("/webhooks/stripe", content=b"x" * 1000)
    assert response.status_code == 200
    assert response.json() == {"received_bytes": 1000}


@pytest.fixture(scope="module")
def express_url():
    if shutil.which("node") is None or not (EXPRESS_DIR / "node_modules" / "express").is_dir():
        pytest.skip("Express baseline not installed; run npm ci in bench/express")
    (port,) = find_free_ports(1)
    process = subprocess.Popen(
        ["node", str(EXPRESS_DIR / "server.js"), str(port)],
        env={"PATH": "/usr/bin:/bin", "STRIPE_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/healthz", trust_env=False)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.integration
def test_express_accepts_signed_request(express_url):
    headers, body = _signed(SECRET)
    response = httpx.post(
        f"{express_url}/webhooks/stripe", content=body, headers=headers, trust_env=False
    )
    assert response.status_code == 200


@pytest.mark.integration
@pytest.mark.parametrize(
    ("secret", "age_seconds", "reason"),
    [
        pytest.param("whsec_other", 0, "no_matching_signature", id="wrong-secret"),
        pytest.param(SECRET, 600, "timestamp_outside_tolerance", id="too-old"),
    ],
)
def test_express_rejects_bad_signature(express_url, secret, age_seconds, reason):
    headers, body = _signed(secret, int(time.time()) - age_seconds)
    response = httpx.post(
        f"{express_url}/webhooks/stripe", content=body, headers=headers, trust_env=False
    )
    assert response.status_code == 401
    assert response.json() == {"error": reason}


@pytest.mark.integration
def test_express_rejects_missing_header(express_url):
    response = httpx.post(
        f"{express_url}/webhooks/stripe",
        content=b"{}",
        headers={"Content-Type": "application/json"},
        trust_env=False,
    )
    assert response.status_code == 401
    assert response.json() == {"error": "missing_header"}
