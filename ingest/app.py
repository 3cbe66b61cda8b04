"""The Litestar application of the ingest service.

Routes: `POST /webhooks/{source}`, `GET /healthz` (the process is alive),
`GET /readyz` (the Kafka producer is connected), `GET /metrics` (Prometheus)
and the OpenAPI document under `/schema`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath

from hookline.config import HooklineConfig
from ingest.metrics import IngestMetrics
from ingest.producer import KafkaRecordProducer, RecordProducer
from ingest.receipts import Receipt
from ingest.receiver import ErrorBody, WebhookReceiver, error_response

# Room for Kafka record headers (the audited request headers among them)
# above the largest body, in bytes.
RECORD_HEADROOM_BYTES = 256 * 1024
# Statuses of exceptions that are the client's fault and are not logged.
CLIENT_ERROR_STATUSES = range(400, 500)


@dataclass(frozen=True)
class Health:
    """Body of the health and readiness responses."""

    status: str


# The route reads the body itself, so Litestar cannot describe it from the
# handler's signature. This description goes into the OpenAPI document instead.
WEBHOOK_BODY = RequestBody(
    description=(
        "The provider's payload exactly as sent, optionally gzip-compressed. The signature "
        "is checked over these bytes, and the source's content_types list the accepted types."
    ),
    required=False,
    content={
        "application/json": OpenAPIMediaType(schema=Schema()),
        "application/x-www-form-urlencoded": OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.OBJECT)
        ),
        "application/octet-stream": OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        ),
    },
)


@dataclass
class WebhookOperation(Operation):
    """OpenAPI operation of the webhook route, with its raw request body documented."""

    def __post_init__(self) -> None:
        self.request_body = WEBHOOK_BODY


def _http_exception(request: Request, error: HTTPException) -> Response[ErrorBody]:
    # Litestar's own client errors (404 for an unknown path, 405 for a wrong
    # method) get the same body as ingest's, so clients parse one error format.
    reason = HTTPStatus(error.status_code).phrase.lower().replace(" ", "_")
    return error_response(error.status_code, reason, str(error.detail), error.headers)


def _receiver(request: Request) -> WebhookReceiver:
    receiver: WebhookReceiver = request.app.state.receiver
    return receiver


def _error_spec(description: str) -> ResponseSpec:
    # No generated examples: they are random, so the document would change on every start.
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


@post(
    "/webhooks/{source:str}",
    status_code=200,
    request_max_body_size=None,  # each source has its own limit, enforced while reading
    operation_class=WebhookOperation,
    summary="Receive a webhook",
    description=(
        "Verifies the request with the source's scheme and stores it on the raw topic. "
        "200 with a receipt id means the broker acknowledged the record. A verified "
        "handshake request (Slack url_verification, Zoom endpoint.url_validation) gets "
        "the reply the provider expects instead, and nothing is stored."
    ),
    responses={
        400: _error_spec(
            "Invalid Content-Length, client disconnected mid-body, corrupt gzip body, "
            "a repeated signature header, or a signed body without the fields its scheme reads"
        ),
        401: _error_spec(
            "Signature or token missing, malformed or wrong, or timestamp outside tolerance"
        ),
        403: _error_spec(
            "Client address outside the source's allowed_networks, or a scheme's "
            "signature check that responds with 403"
        ),
        404: _error_spec("No source with this name is configured"),
        408: _error_spec("Body not received within the body read timeout"),
        409: _error_spec("An identical signed request arrived within the replay window"),
        413: _error_spec("Body, or its gzip-decompressed form, larger than max_body_bytes"),
        415: _error_spec("Content coding other than gzip, or media type not accepted"),
        429: _error_spec("Rate limit of the source used up; retry after the Retry-After seconds"),
        503: _error_spec("Broker unavailable; retry after the Retry-After seconds"),
    },
)
async def receive_webhook(request: Request, source: FromPath[str]) -> Response[Receipt]:
    """Verify a webhook request and store it on the raw topic."""
    return await _receiver(request).receive(request, source)


@get("/healthz", summary="Liveness")
async def healthz() -> Health:
    """Return 200 while the process serves requests."""
    return Health("ok")


@get(
    "/readyz",
    summary="Readiness",
    responses={503: ResponseSpec(data_container=Health, description="Broker unreachable")},
)
async def readyz(request: Request) -> Response[Health]:
    """Return 200 when the Kafka producer is connected and a broker is reachable, else 503."""
    if await _receiver(request).producer.check_ready():
        return Response(Health("ready"), status_code=200)
    return Response(Health("broker unavailable"), status_code=503)


@get("/metrics", summary="Prometheus metrics", media_type="text/plain")
async def metrics(request: Request) -> Response[bytes]:
    """Return the metrics in the Prometheus text format."""
    content, content_type = _receiver(request).metrics.render()
    return Response(content, media_type=content_type)


def create_app(
    config: HooklineConfig,
    *,
    producer: RecordProducer | None = None,
    clock: Callable[[], float] = time.time,
) -> Litestar:
    """Build the ingest application for CONFIG.

    Args:
        config: The deployment config.
        producer: The Kafka producer to use. By default a `KafkaRecordProducer`
            for `config.kafka`, sized for the largest `max_body_bytes`.
        clock: Returns the current Unix time in seconds, for receive times
            and signature timestamp checks. Tests pass a fixed clock.

    Raises:
        ConfigError: when a source's scheme, secrets or allowed networks are unusable.
    """
    if producer is None:
        largest_body = max((s.max_body_bytes for s in config.sources.values()), default=0)
        producer = KafkaRecordProducer(
            config.kafka,
            max_request_size=max(1024 * 1024, largest_body + RECORD_HEADROOM_BYTES),
        )
    receiver = WebhookReceiver(config, producer, IngestMetrics(), clock=clock)

    return Litestar(
        route_handlers=[receive_webhook, healthz, readyz, metrics],
        on_startup=[receiver.start],
        on_shutdown=[receiver.stop],
        exception_handlers={HTTPException: _http_exception},
        state=State({"receiver": receiver}),
        openapi_config=OpenAPIConfig(title="Hookline ingest", version="0.1.0", path="/schema"),
        # Leave the root logger to the program (see ingest.server.run), and log
        # unhandled exceptions even outside debug mode. Client errors that
        # Litestar raises (404 and 405 from routing) are not logged, so a
        # client cannot fill the log with a traceback per request.
        logging_config=LoggingConfig(
            configure_root_logger=False,
            log_exceptions="always",
            disable_stack_trace=set(CLIENT_ERROR_STATUSES),
        ),
    )
