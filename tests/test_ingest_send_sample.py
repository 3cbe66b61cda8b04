"""Samples of the catalogue's schemes: built, verified, and sent by `hookline send-sample`.

The send tests run the real ingest application under uvicorn on a free
loopback port, with a recording producer in place of Kafka, and drive the
`hookline` command against it with the example config.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner
from ingest_fakes import RAW_TOPIC, RecordingProducer

from hookline.broker import find_free_ports
from hookline.cli import main
from hookline.config import KafkaConfig, SourceConfig, load_config
from hookline.errors import VerificationError
from ingest.app import create_app
from ingest.samples import REPOSITORY_SAMPLES, build_sample, sample_path
from ingest.schemes import create_verifier

EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "config" / "hookline.toml"
NOW = 1767225600
SIGNING_TOKEN = "whsec_" + base64.b64encode(b"test-only-sample-gitlab-signing").decode()
GENERIC_OPTIONS = {
    "header": "X-Signature",
    "algorithm": "sha512",
    "encoding": "base64",
    "prefix": "sha512=",
    "signed_content": "{timestamp}:{body}",
    "timestamp_header": "X-Timestamp",
}
SOURCES = {
    "shopify": SourceConfig(name="shop", scheme="shopify", secrets=("test-only-sample-shop",)),
    "slack": SourceConfig(name="chat", scheme="slack", secrets=("test-only-sample-slack",)),
    "zoom": SourceConfig(name="meet", scheme="zoom", secrets=("test-only-sample-zoom",)),
    "linear": SourceConfig(name="issues", scheme="linear", secrets=("test-only-sample-linear",)),
    "intercom": SourceConfig(name="inbox", scheme="intercom", secrets=("test-only-sample-ic",)),
    "typeform": SourceConfig(name="forms", scheme="typeform", secrets=("test-only-sample-tf",)),
    "paddle": SourceConfig(name="billing", scheme="paddle", secrets=("pdl_ntfset_test_only",)),
    "gitlab": SourceConfig(name="code", scheme="gitlab", secrets=("test-only-sample-gitlab",)),
    "gitlab-signed": SourceConfig(
        name="code-signed",
        scheme="gitlab",
        secrets=(SIGNING_TOKEN,),
        options={"signing": "standard-webhooks"},
    ),
    "generic-hmac": SourceConfig(
        name="acme", scheme="generic-hmac", secrets=("test-only-generic",), options=GENERIC_OPTIONS
    ),
    "token": SourceConfig(
        name="tokened",
        scheme="token",
        secrets=("test-only-token",),
        options={"header": "X-Webhook-Token"},
    ),
    "basic-auth": SourceConfig(name="basic", scheme="basic-auth", secrets=("sample:test-only",)),
}
OTHER_SECRETS = {
    "gitlab-signed": "whsec_" + base64.b64encode(b"another-test-only-signing-token").decode(),
    "basic-auth": "sample:other-password",
}
# How to find the event id of each sample, which must change on every call.
EVENT_IDS = {
    "shopify": lambda headers, body: headers["X-Shopify-Webhook-Id"],
    "slack": lambda headers, body: json.loads(body)["event_id"],
    "zoom": lambda headers, body: json.loads(body)["payload"]["object"]["uuid"],
    "linear": lambda headers, body: headers["Linear-Delivery"],
    "intercom": lambda headers, body: json.loads(body)["id"],
    "typeform": lambda headers, body: json.loads(body)["event_id"],
    "paddle": lambda headers, body: json.loads(body)["event_id"],
    "gitlab": lambda headers, body: headers["Idempotency-Key"],
    "gitlab-signed": lambda headers, body: headers["webhook-id"],
    "generic-hmac": lambda headers, body: json.loads(body)["id"],
    "token": lambda headers, body: json.loads(body)["id"],
    "basic-auth": lambda headers, body: json.loads(body)["id"],
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_sample_verifies_with_its_scheme(name):
    source = SOURCES[name]

    headers, body = build_sample(source, now=NOW)

    create_verifier(source).verify(headers, body, now=NOW)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_sample_rejected_with_other_secret(name):
    source = SOURCES[name]
    other_secret = OTHER_SECRETS.get(name, "test-only-some-other-secret")
    other = SourceConfig(
        name=source.name, scheme=source.scheme, secrets=(other_secret,), options=source.options
    )
    headers, body = build_sample(source, now=NOW)

    with pytest.raises(VerificationError):
        create_verifier(other).verify(headers, body, now=NOW)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_sample_fresh_event_id_each_call(name):
    source = SOURCES[name]

    ids = {EVENT_IDS[name](*build_sample(source, now=NOW)) for _ in range(10)}

    assert len(ids) == 10


def test_sample_linear_timestamp_in_body():
    _, body = build_sample(SOURCES["linear"], now=NOW)

    assert json.loads(body)["webhookTimestamp"] == NOW * 1000


def test_sample_generic_headers_follow_options():
    headers, _ = build_sample(SOURCES["generic-hmac"], now=NOW)

    assert headers["X-Timestamp"] == str(NOW)
    assert headers["X-Signature"].startswith("sha512=")
    assert len(base64.b64decode(headers["X-Signature"].removeprefix("sha512="))) == 64


def test_sample_files_are_json_objects():
    for name in (
        "shopify_orders_create.json",
        "slack_app_mention.json",
        "zoom_meeting_started.json",
        "linear_issue_update.json",
        "intercom_conversation_created.json",
        "typeform_form_response.json",
        "paddle_transaction_completed.json",
        "gitlab_push.json",
        "generic_event.json",
    ):
        path = sample_path(name)
        assert path.resolve() == (REPOSITORY_SAMPLES / name).resolve()
        assert isinstance(json.loads(path.read_text()), dict), name


CATALOGUE_SOURCES = [
    "shopify",
    "slack",
    "zoom",
    "linear",
    "intercom",
    "typeform",
    "paddle",
    "gitlab",
    "gitlab-signed",
    "generic-hmac",
    "token",
    "basic-auth",
]


def test_example_config_has_catalogue_sources():
    config = load_config(EXAMPLE_CONFIG)

    assert set(CATALOGUE_SOURCES) <= set(config.sources)
    schemes = {config.sources[name].scheme for name in CATALOGUE_SOURCES}
    assert schemes == {
        "shopify",
        "slack",
        "zoom",
        "linear",
        "intercom",
        "typeform",
        "paddle",
        "gitlab",
        "generic-hmac",
        "token",
        "basic-auth",
    }


@pytest.fixture(scope="module")
def example_ingest() -> Iterator[tuple[str, RecordingProducer]]:
    """Serve ingest with the example config on a free loopback port."""
    config = load_config(EXAMPLE_CONFIG)
    config = dataclasses.replace(
        config, kafka=KafkaConfig(raw_topic=RAW_TOPIC, rejected_topic="test.rejected")
    )
    producer = RecordingProducer()
    (port,) = find_free_ports(1)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, producer=producer),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started:
        assert thread.is_alive(), "uvicorn exited before it started"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", producer
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)


@pytest.mark.parametrize("name", CATALOGUE_SOURCES)
def test_send_sample_command_accepted(example_ingest, name):
    url, producer = example_ingest
    before = len(producer.on(RAW_TOPIC))

    result = CliRunner().invoke(
        main, ["--config", str(EXAMPLE_CONFIG), "send-sample", name, "--url", url, "--count", "2"]
    )

    assert result.exit_code == 0, result.output
    assert result.output.count(" -> 200 ") == 2
    assert len(producer.on(RAW_TOPIC)) == before + 2


@pytest.mark.parametrize("name", CATALOGUE_SOURCES)
def test_send_sample_forged_rejected(example_ingest, name):
    url, producer = example_ingest
    before = len(producer.on(RAW_TOPIC))

    result = CliRunner().invoke(
        main, ["--config", str(EXAMPLE_CONFIG), "send-sample", name, "--url", url, "--forge"]
    )

    assert result.exit_code == 0, result.output
    assert " -> 401 " in result.output
    assert len(producer.on(RAW_TOPIC)) == before
