"""Per-source client allowlists: config parsing, address matching and 403 responses.

The only traffic these tests send goes to loopback. Addresses from the
documentation ranges (192.0.2.0/24, 2001:db8::/32) appear only as values in
an ASGI scope or in a config.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from litestar import Litestar
from litestar.testing import TestClient

from hookline import records
from hookline.broker import find_free_ports
from hookline.config import HooklineConfig, IngestConfig, KafkaConfig, SourceConfig, parse_config
from hookline.errors import ConfigError
from ingest.allowlist import NetworkAllowlist
from ingest.app import create_app
from ingest.signing import typeform_headers

SECRET = "test-only-allowlist-typeform-secret"
BODY = b'{"event_id":"01ALLOW","event_type":"form_response"}'


def make_config(allowed_networks: tuple[str, ...]) -> HooklineConfig:
    return HooklineConfig(
        kafka=KafkaConfig(raw_topic=RAW_TOPIC, rejected_topic=REJECTED_TOPIC),
        ingest=IngestConfig(rejected_body_max_bytes=64),
        sources={
            "forms": SourceConfig(
                name="forms",
                scheme="typeform",
                secrets=(SECRET,),
                event_id="json:/event_id",
                max_body_bytes=1024,
                allowed_networks=allowed_networks,
            )
        },
    )


def signed_request(body: bytes = BODY) -> dict[str, str]:
    return {"Content-Type": "application/json", **typeform_headers(SECRET, body)}


# --- NetworkAllowlist ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("networks", "address", "expected"),
    [
        pytest.param([], "203.0.113.9", True, id="empty-allows-all"),
        pytest.param([], "testclient", True, id="empty-allows-non-ip"),
        pytest.param(["192.0.2.0/24"], "192.0.2.77", True, id="ipv4-inside"),
        pytest.param(["192.0.2.0/24"], "192.0.3.1", False, id="ipv4-outside"),
        pytest.param(["192.0.2.0/24"], "192.0.2.0", True, id="ipv4-network-address"),
        pytest.param(["192.0.2.8/32"], "192.0.2.8", True, id="ipv4-single-host"),
        pytest.param(["192.0.2.8/32"], "192.0.2.9", False, id="ipv4-next-host"),
        pytest.param(["2001:db8::/32"], "2001:db8:1::5", True, id="ipv6-inside"),
        pytest.param(["2001:db8::/32"], "2001:db9::5", False, id="ipv6-outside"),
        pytest.param(["2001:db8::/32"], "2001:DB8::A", True, id="ipv6-upper-case"),
        pytest.param(["192.0.2.0/24"], "::ffff:192.0.2.7", True, id="ipv4-mapped-inside"),
        pytest.param(["192.0.2.0/24"], "::ffff:198.51.100.7", False, id="ipv4-mapped-outside"),
        pytest.param(["::/0"], "192.0.2.7", False, id="ipv4-not-in-ipv6-any"),
        pytest.param(["0.0.0.0/0"], "2001:db8::1", False, id="ipv6-not-in-ipv4-any"),
        pytest.param(["fe80::/10"], "fe80::1%eth0", True, id="ipv6-scoped"),
        pytest.param(["192.0.2.0/24", "2001:db8::/32"], "2001:db8::1", True, id="second-entry"),
        pytest.param(["192.0.2.0/24"], "testclient", False, id="not-an-address"),
        pytest.param(["192.0.2.0/24"], "", False, id="no-address"),
    ],
)
def test_allowlist_matches(networks, address, expected):
    assert NetworkAllowlist(networks).allows(address) is expected


@pytest.mark.parametrize(
    "entry", ["192.0.2.0/33", "not-a-network", "192.0.2.1/24", "2001:db8::/129"]
)
def test_allowlist_invalid_entry_config_error(entry):
    with pytest.raises(ConfigError, match="allowed_networks"):
        NetworkAllowlist([entry])


def config_with(source: dict[str, Any]) -> HooklineConfig:
    return parse_config({"sources": {"forms": {"scheme": "typeform", "secrets": ["x"], **source}}})


def test_config_allowed_networks_parsed():
    config = config_with({"allowed_networks": [" 192.0.2.0/24", "2001:DB8::/32", "198.51.100.7"]})

    source = config.sources["forms"]
    assert source.allowed_networks == ("192.0.2.0/24", "2001:db8::/32", "198.51.100.7/32")
    assert "allowed_networks" not in source.options


def test_config_allowed_networks_default_empty():
    assert config_with({}).sources["forms"].allowed_networks == ()


def test_config_allowed_networks_single_string():
    config = config_with({"allowed_networks": "192.0.2.0/24"})

    assert config.sources["forms"].allowed_networks == ("192.0.2.0/24",)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(["192.0.2.1/24"], id="host-bits-set"),
        pytest.param(["example.com"], id="hostname"),
        pytest.param(24, id="not-a-list"),
    ],
)
def test_config_allowed_networks_invalid(value):
    with pytest.raises(ConfigError, match="forms"):
        config_with({"allowed_networks": value})


def test_receiver_rejects_invalid_network_config():
    # A SourceConfig built in code is checked when the application is created.
    with pytest.raises(ConfigError, match="forms"):
        create_app(make_config(("192.0.2.0/99",)), producer=RecordingProducer())


# --- Through the application -----------------------------------------------------------------


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


def test_app_without_allowlist_accepts_test_client(producer):
    with TestClient(create_app(make_config(()), producer=producer)) as client:
        response = client.post("/webhooks/forms", content=BODY, headers=signed_request())

    assert response.status_code == 200
    assert producer.on(RAW_TOPIC)[0].headers[records.REMOTE_ADDR] == b"testclient"


def test_app_allowlist_rejects_test_client_403(producer, caplog):
    # Litestar's test client reports the peer "testclient", which is in no network.
    with TestClient(create_app(make_config(("192.0.2.0/24",)), producer=producer)) as client:
        with caplog.at_level(logging.WARNING, logger="ingest.receiver"):
            first = client.post("/webhooks/forms", content=BODY, headers=signed_request())
            second = client.post("/webhooks/forms", content=BODY, headers=signed_request())
        metrics = client.get("/metrics").text
        rejected = producer.wait_for(REJECTED_TOPIC, 2)

    assert first.status_code == 403
    assert second.status_code == 403
    assert first.json()["error"] == "address_not_allowed"
    assert producer.on(RAW_TOPIC) == []
    assert 'hookline_ingest_requests_total{source="forms",status="403"} 2.0' in metrics
    assert len(rejected) == 2
    assert rejected[0].headers[records.STATUS] == b"403"
    assert rejected[0].headers[records.REASON] == b"address_not_allowed"
    assert rejected[0].headers[records.REMOTE_ADDR] == b"testclient"
    # The body of a client outside the allowlist is not read.
    assert rejected[0].value == b""
    warnings = [r for r in caplog.records if "address_not_allowed" in r.getMessage()]
    assert len(warnings) == 1  # the second rejection is rate-limited
    assert "testclient" in warnings[0].getMessage()


def test_app_allowlist_checked_before_signature(producer):
    with TestClient(create_app(make_config(("192.0.2.0/24",)), producer=producer)) as client:
        response = client.post(
            "/webhooks/forms", content=b"x" * 5000, headers={"Content-Type": "text/plain"}
        )

    assert response.status_code == 403


async def call_with_client(app: Litestar, client_address: str) -> tuple[int, int]:
    """POST a signed body through ASGI with CLIENT_ADDRESS as the peer.

    Returns the response status and how many receive calls the application made.
    """
    sent: list[dict[str, Any]] = []
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(name.lower().encode(), value.encode()) for name, value in signed_request().items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/forms",
        "raw_path": b"/webhooks/forms",
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"content-length", str(len(BODY)).encode())],
        "client": (client_address, 40000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return sent[0]["status"], calls


@pytest.mark.parametrize(
    ("client_address", "expected"),
    [
        pytest.param("192.0.2.10", 200, id="ipv4-allowed"),
        pytest.param("198.51.100.10", 403, id="ipv4-denied"),
        pytest.param("2001:db8:0:1::10", 200, id="ipv6-allowed"),
        pytest.param("2001:db9::10", 403, id="ipv6-denied"),
        pytest.param("::ffff:192.0.2.10", 200, id="ipv4-mapped-allowed"),
    ],
)
async def test_app_allowlist_by_scope_client(producer, client_address, expected):
    app = create_app(make_config(("192.0.2.0/24", "2001:db8::/32")), producer=producer)

    status, calls = await call_with_client(app, client_address)

    assert status == expected
    assert calls == (1 if expected == 200 else 0)
    assert len(producer.on(RAW_TOPIC)) == (1 if expected == 200 else 0)


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start a real uvicorn server on a free loopback port for an application."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Litestar) -> str:
        (port,) = find_free_ports(1)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10.0
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    yield start

    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10.0)


@pytest.mark.parametrize(
    ("networks", "expected"),
    [
        pytest.param(("127.0.0.0/8",), 200, id="loopback-allowed"),
        pytest.param(("192.0.2.0/24", "2001:db8::/32"), 403, id="loopback-not-listed"),
    ],
)
def test_app_allowlist_real_server_loopback(producer, serve, networks, expected):
    url = serve(create_app(make_config(networks), producer=producer))

    response = httpx.post(f"{url}/webhooks/forms", content=BODY, headers=signed_request())

    assert response.status_code == expected
    if expected == 200:
        assert producer.on(RAW_TOPIC)[0].headers[records.REMOTE_ADDR] == b"127.0.0.1"
    else:
        assert producer.wait_for(REJECTED_TOPIC, 1)[0].headers[records.REMOTE_ADDR] == (
            b"127.0.0.1"
        )
