"""The Litestar application of the ingest service.

Routes: `POST /webhooks/{source}`, `GET /healthz` (the process is alive),
`GET /readyz` (the Kafka producer is connected), `GET /metrics` (Prometheus)
and the OpenAPI document under `/schema`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.params import FromPath

from hookline.config import HooklineConfig
from ingest.metrics import IngestMetrics
from ingest.producer import KafkaRecordProducer, RecordProducer
from ingest.receiver import ErrorBody, Receipt, WebhookReceiver

# Room for Kafka record headers (the audited request headers among them)
# above the largest body, in bytes.
RECORD_HEADROOM_BYTES = 256 * 1024


@dataclass(frozen=True)
class Health:
    """Body of the health and readiness responses."""

    status: str


def _receiver(request: Request) -> WebhookReceiver:
    receiver: WebhookReceiver = request.app.state.receiver
    return receiver


def _error_spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description)


@post(
    "/webhooks/{source:str}",
    status_code=200,
    request_max_body_size=None,  # each source has its own limit, enforced while reading
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
            "or a signed body without the fields its scheme reads"
        ),
        401: _error_spec(
            "Signature or token missing, malformed or wrong, or timestamp outside tolerance"
        ),
        403: _error_spec(
            "Client address outside the source's allowed_networks, or a scheme's "
            "signature check that responds with 403"
        ),
        404: _error_spec("No source with this name is configured"),
        413: _error_spec("Body, or its gzip-decompressed form, larger than max_body_bytes"),
        415: _error_spec("Content coding other than gzip, or media type not accepted"),
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
        state=State({"receiver": receiver}),
        openapi_config=OpenAPIConfig(title="Hookline ingest", version="0.1.0", path="/schema"),
        # Leave the root logger to the program (see ingest.server.run), and log
        # unhandled exceptions even outside debug mode.
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="always"),
    )
