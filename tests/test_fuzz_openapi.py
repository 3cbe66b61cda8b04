"""Schemathesis against ingest's own OpenAPI document (`/schema/openapi.json`).

ingest runs as a child process with a producer that acknowledges at once, so
the designed 503 (broker unavailable) cannot occur and every 5xx is a bug.
Each documented operation is fuzzed with schemathesis' strategies, the webhook
route also for several configured sources and in negative mode. Every response
must be no server error, have a documented status and content type, and match
the documented schema.

Written against schemathesis 4.32.5. HOOKLINE_FUZZ_EXAMPLES sets the number of
examples per operation and mode (default 60).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_hostile_server import ServerProcess, repository_config

EXAMPLES = int(os.environ.get("HOOKLINE_FUZZ_EXAMPLES", "60"))
SOURCES = ["stripe", "github", "slack", "twilio", "mailgun", "basic-auth", "discord"]
OPERATIONS = [
    ("POST", "/webhooks/{source}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    raw = repository_config(request_head_timeout_seconds=2.0, body_read_timeout_seconds=2.0)
    with ServerProcess(raw, tmp_path_factory.mktemp("fuzz-openapi")) as process:
        yield process
        assert process.is_healthy(), process.log_text()
        assert "Traceback" not in process.log_text()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        # Loopback only: no proxy from the environment.
        http.trust_env = False
        yield http


@pytest.fixture(scope="module")
def schema(server: ServerProcess, session: requests.Session) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json", timeout=10)


def test_openapi_lists_the_fuzzed_operations(schema):
    found = {(operation.method.upper(), operation.path) for operation in operations(schema)}

    assert found == set(OPERATIONS)


def operations(schema: schemathesis.BaseSchema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def run_cases(server: ServerProcess, session: requests.Session, strategy) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case) -> None:
        case.call_and_validate(base_url=server.url, session=session, checks=CHECKS, timeout=30)

    call()


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_openapi_operation_conforms(server, schema, session, method, path):
    run_cases(server, session, schema[path][method].as_strategy())


@pytest.mark.parametrize("source", SOURCES)
def test_openapi_webhook_for_configured_source(server, schema, session, source):
    # Generated path parameters rarely name a configured source, so each of
    # these sources gets generated bodies and media types of its own.
    operation = schema["/webhooks/{source}"]["POST"]

    run_cases(server, session, operation.as_strategy(path_parameters={"source": source}))


@pytest.mark.parametrize("source", ["a/b", "..", "%", "stripe/extra", " "])
def test_openapi_webhook_for_path_like_source(server, schema, session, source):
    # Names that do not reach the route, so that Litestar responds for it,
    # must still get the documented error body.
    operation = schema["/webhooks/{source}"]["POST"]

    run_cases(server, session, operation.as_strategy(path_parameters={"source": source}))


def test_openapi_webhook_negative(server, schema, session):
    # The documented form body is an object, so negative mode sends other JSON there.
    operation = schema["/webhooks/{source}"]["POST"]
    strategy = operation.as_strategy(
        generation_mode=GenerationMode.NEGATIVE, path_parameters={"source": "github"}
    )

    run_cases(server, session, strategy)
